//! The events Citadel's services emit, in AWS's shapes (see `reference/detection.md` §2.4):
//! CloudTrail-delivered API calls, KMS key rotation / deletion / imported-material expiration,
//! Parameter Store changes and policy actions, and Secrets Manager service events (rotation).
//!
//! Each builder returns an [`Event`] to hand to the bus (`Bus::publish`).

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::event::{Event, EventError};

pub const API_CALL_VIA_CLOUDTRAIL: &str = "AWS API Call via CloudTrail";
pub const SERVICE_EVENT_VIA_CLOUDTRAIL: &str = "AWS Service Event via CloudTrail";

fn kms_key_event(
    detail_type: &str,
    account: &str,
    region: &str,
    key_id: &str,
    at: Option<OffsetDateTime>,
) -> Result<Event, EventError> {
    Event::new(
        "aws.kms",
        detail_type,
        json!({"key-id": key_id}),
        account,
        region,
        vec![format!("arn:aws:kms:{region}:{account}:key/{key_id}")],
        at,
    )
}

/// `KMS CMK Rotation`: the key's material was rotated automatically.
pub fn kms_cmk_rotation(account: &str, region: &str, key_id: &str) -> Result<Event, EventError> {
    kms_key_event("KMS CMK Rotation", account, region, key_id, None)
}

/// `KMS CMK Deletion`: the waiting period ended and the key was deleted.
pub fn kms_cmk_deletion(account: &str, region: &str, key_id: &str) -> Result<Event, EventError> {
    kms_key_event("KMS CMK Deletion", account, region, key_id, None)
}

/// `KMS Imported Key Material Expiration`.
pub fn kms_imported_key_material_expiration(
    account: &str,
    region: &str,
    key_id: &str,
) -> Result<Event, EventError> {
    kms_key_event(
        "KMS Imported Key Material Expiration",
        account,
        region,
        key_id,
        None,
    )
}

/// The ARN of an SSM parameter (`/a/b` and `a` both become `parameter/a…`).
pub fn parameter_arn(account: &str, region: &str, name: &str) -> String {
    format!(
        "arn:aws:ssm:{region}:{account}:parameter/{}",
        name.trim_start_matches('/')
    )
}

/// `Parameter Store Change`: `operation` is `Create`, `Update`, `Delete` or
/// `LabelParameterVersion`.
pub fn parameter_store_change(
    account: &str,
    region: &str,
    name: &str,
    parameter_type: &str,
    operation: &str,
    description: Option<&str>,
) -> Result<Event, EventError> {
    let mut detail = json!({"name": name, "type": parameter_type, "operation": operation});
    if let (Some(d), Some(obj)) = (description, detail.as_object_mut()) {
        obj.insert("description".into(), Value::String(d.to_owned()));
    }
    Event::new(
        "aws.ssm",
        "Parameter Store Change",
        detail,
        account,
        region,
        vec![parameter_arn(account, region, name)],
        None,
    )
}

/// `Parameter Store Policy Action`: a parameter policy (`Expiration`, `ExpirationNotification`,
/// `NoChangeNotification`) acted.
#[allow(clippy::too_many_arguments)]
pub fn parameter_store_policy_action(
    account: &str,
    region: &str,
    name: &str,
    parameter_type: &str,
    policy_type: &str,
    policy_content: &str,
    action_status: &str,
    action_reason: &str,
) -> Result<Event, EventError> {
    Event::new(
        "aws.ssm",
        "Parameter Store Policy Action",
        json!({
            "policy-type": policy_type,
            "parameter-name": name,
            "parameter-type": parameter_type,
            "policy-content": policy_content,
            "action-status": action_status,
            "action-reason": action_reason,
        }),
        account,
        region,
        vec![parameter_arn(account, region, name)],
        None,
    )
}

/// A CloudTrail record as EventBridge delivers it: `detail-type` is `AWS API Call via
/// CloudTrail` (or `AWS Service Event via CloudTrail` for `eventType: AwsServiceEvent`), the
/// source is `aws.<service>` from `eventSource`, and `detail` is the record. Rules see read-only
/// calls (`readOnly: true`) only in state `ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS`.
pub fn cloudtrail(record: &Value) -> Result<Event, EventError> {
    let text = |k: &str| record.get(k).and_then(Value::as_str).unwrap_or_default();
    let service = text("eventSource")
        .strip_suffix(".amazonaws.com")
        .unwrap_or(text("eventSource"));
    let account = match text("recipientAccountId") {
        "" => record
            .pointer("/userIdentity/accountId")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        a => a,
    };
    let detail_type = if text("eventType") == "AwsServiceEvent" {
        SERVICE_EVENT_VIA_CLOUDTRAIL
    } else {
        API_CALL_VIA_CLOUDTRAIL
    };
    let at = time::OffsetDateTime::parse(
        text("eventTime"),
        &time::format_description::well_known::Rfc3339,
    )
    .ok();
    Event::new(
        format!("aws.{service}"),
        detail_type,
        record.clone(),
        account,
        text("awsRegion"),
        Vec::new(),
        at,
    )
}

/// A Secrets Manager lifecycle service event (`RotationStarted`, `RotationSucceeded`,
/// `RotationFailed`, `RotationAbandoned`, `StartSecretVersionDelete`, …), shaped as the CloudTrail
/// `AwsServiceEvent` record EventBridge delivers (`additionalEventData.SecretId`).
pub fn secrets_manager_service_event(
    account: &str,
    region: &str,
    secret_arn: &str,
    event_name: &str,
) -> Result<Event, EventError> {
    let now = crate::event::format_time(OffsetDateTime::now_utc())?;
    let record = json!({
        "eventVersion": "1.11",
        "userIdentity": {"accountId": account, "invokedBy": "secretsmanager.amazonaws.com"},
        "eventTime": now,
        "eventSource": "secretsmanager.amazonaws.com",
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": "secretsmanager.amazonaws.com",
        "userAgent": "secretsmanager.amazonaws.com",
        "requestParameters": null,
        "responseElements": null,
        "additionalEventData": {"SecretId": secret_arn},
        "requestID": uuid::Uuid::new_v4().to_string(),
        "eventID": uuid::Uuid::new_v4().to_string(),
        "readOnly": false,
        "eventType": "AwsServiceEvent",
        "managementEvent": true,
        "recipientAccountId": account,
        "eventCategory": "Management",
    });
    cloudtrail(&record)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Pattern;

    #[test]
    fn kms_and_ssm_shapes() {
        let e = kms_cmk_rotation("111122223333", "us-east-1", "1234abcd").unwrap();
        assert_eq!(e.source, "aws.kms");
        assert_eq!(e.detail_type, "KMS CMK Rotation");
        assert_eq!(e.detail, json!({"key-id": "1234abcd"}));
        assert_eq!(
            e.resources,
            ["arn:aws:kms:us-east-1:111122223333:key/1234abcd"]
        );
        let p =
            parameter_store_change("1", "r", "/app/db", "SecureString", "Update", None).unwrap();
        assert_eq!(p.resources, ["arn:aws:ssm:r:1:parameter/app/db"]);
        assert_eq!(p.detail["operation"], "Update");
    }

    #[test]
    fn cloudtrail_records_become_api_call_events() {
        let record = json!({"eventVersion": "1.11", "eventTime": "2020-07-27T22:58:24Z",
            "eventSource": "kms.amazonaws.com", "eventName": "Decrypt", "awsRegion": "us-west-2",
            "readOnly": true, "eventType": "AwsApiCall", "recipientAccountId": "111122223333"});
        let e = cloudtrail(&record).unwrap();
        assert_eq!(e.source, "aws.kms");
        assert_eq!(e.detail_type, API_CALL_VIA_CLOUDTRAIL);
        assert_eq!(e.time, "2020-07-27T22:58:24Z");
        assert_eq!(e.account, "111122223333");
        assert_eq!(e.region, "us-west-2");
        let p = Pattern::parse(
            r#"{"source":["aws.kms"],"detail-type":["AWS API Call via CloudTrail"],"detail":{"eventName":["Decrypt"]}}"#,
        )
        .unwrap();
        assert!(p.matches(&e.to_value()));
        let s =
            secrets_manager_service_event("1", "us-east-1", "arn:s", "RotationSucceeded").unwrap();
        assert_eq!(s.source, "aws.secretsmanager");
        assert_eq!(s.detail_type, SERVICE_EVENT_VIA_CLOUDTRAIL);
        assert_eq!(s.detail["additionalEventData"]["SecretId"], "arn:s");
    }
}
