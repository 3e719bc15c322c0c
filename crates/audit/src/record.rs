//! The CloudTrail event record (`eventVersion` 1.11), built from what the dispatcher knows
//! about one API call.

use std::net::IpAddr;

use citadel_api::{
    AwsError, OperationInput, OperationOutput, OperationSpec, Principal, PrincipalKind, ServiceSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::redact;

pub const EVENT_VERSION: &str = "1.11";

/// A field whose JSON is larger than this is replaced by `{"omitted": true, "originalSize": N}`
/// (CloudTrail truncates oversized fields the same way and marks them `omitted`).
pub const MAX_FIELD_BYTES: usize = 100 * 1024;
/// User agents longer than this are cut.
const MAX_USER_AGENT: usize = 1024;

/// One CloudTrail record. Field names and order are CloudTrail's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub event_version: String,
    pub user_identity: UserIdentity,
    pub event_time: String,
    pub event_source: String,
    pub event_name: String,
    pub aws_region: String,
    #[serde(rename = "sourceIPAddress")]
    pub source_ip_address: String,
    pub user_agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub request_parameters: Value,
    pub response_elements: Value,
    #[serde(rename = "requestID")]
    pub request_id: String,
    #[serde(rename = "eventID")]
    pub event_id: String,
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    pub event_type: String,
    pub api_version: String,
    pub management_event: bool,
    pub recipient_account_id: String,
    pub event_category: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_details: Option<TlsDetails>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_context: Option<SessionContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext {
    pub session_issuer: SessionIssuer,
    pub attributes: SessionAttributes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer {
    #[serde(rename = "type")]
    pub kind: String,
    pub principal_id: String,
    pub arn: String,
    pub account_id: String,
    pub user_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAttributes {
    pub mfa_authenticated: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    #[serde(rename = "accountId")]
    pub account_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "ARN")]
    pub arn: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher_suite: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_provided_host_header: Option<String>,
}

/// Who made the call, as far as the dispatcher got.
#[derive(Debug, Clone)]
pub enum Caller<'a> {
    /// Authenticated.
    Principal(&'a Principal),
    /// Authentication failed (bad signature, unknown or expired key): only the access key id
    /// the request named, if it could be parsed, is known.
    Unauthenticated { access_key_id: Option<&'a str> },
}

/// Everything the dispatcher knows about one finished call.
#[derive(Debug)]
pub struct Call<'a> {
    pub service: &'static ServiceSpec,
    pub operation: &'static OperationSpec,
    pub request_id: &'a str,
    /// The region of the SigV4 credential scope (empty when the signature could not be read).
    pub region: &'a str,
    pub caller: Caller<'a>,
    /// The account whose trail receives the record when there is no principal.
    pub fallback_account: &'a str,
    pub source_ip: Option<IpAddr>,
    pub user_agent: Option<&'a str>,
    pub tls: Option<TlsDetails>,
    pub input: &'a OperationInput,
    pub outcome: Result<&'a OperationOutput, &'a AwsError>,
}

/// Regions recorded for calls whose signature named none.
pub const FALLBACK_REGION: &str = "us-east-1";

/// Operations that change nothing although their names do not say so. The crypto operations of
/// KMS are reads for CloudTrail (`readOnly: true` on Encrypt, Decrypt, GenerateDataKey …).
const READ_ONLY_OPERATIONS: &[&str] = &[
    "BatchGetSecretValue",
    "Decrypt",
    "DeriveSharedSecret",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GenerateRandom",
    "LookupEvents",
    "ReEncrypt",
    "Sign",
    "SimulateCustomPolicy",
    "SimulatePrincipalPolicy",
    "Verify",
    "VerifyMac",
];

/// CloudTrail's `readOnly`: Get/List/Describe/… operations and the crypto reads of KMS.
pub fn is_read_only(operation: &str) -> bool {
    ["Get", "List", "Describe", "Lookup", "Search", "Head"]
        .iter()
        .any(|p| operation.starts_with(p))
        || READ_ONLY_OPERATIONS.contains(&operation)
}

/// `kms` → `kms.amazonaws.com`.
pub fn event_source(service: &ServiceSpec) -> String {
    format!("{}.amazonaws.com", service.endpoint_prefix)
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` (and any RFC 3339 time).
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

fn user_identity(caller: &Caller<'_>) -> UserIdentity {
    let p = match caller {
        Caller::Unauthenticated { access_key_id } => {
            return UserIdentity {
                kind: "Unknown".to_owned(),
                access_key_id: access_key_id.map(str::to_owned),
                ..UserIdentity::default()
            };
        }
        Caller::Principal(p) => p,
    };
    let base = UserIdentity {
        principal_id: Some(p.user_id.clone()),
        arn: Some(p.arn.clone()),
        account_id: Some(p.account_id.clone()),
        access_key_id: Some(p.access_key_id.clone()),
        ..UserIdentity::default()
    };
    match p.kind {
        PrincipalKind::Root => UserIdentity {
            kind: "Root".to_owned(),
            ..base
        },
        PrincipalKind::User => UserIdentity {
            kind: "IAMUser".to_owned(),
            user_name: p.arn.rsplit('/').next().map(str::to_owned),
            ..base
        },
        PrincipalKind::AssumedRole => {
            // arn:aws:sts::<acct>:assumed-role/<role>/<session>; user id AROA…:<session>.
            let role = p
                .arn
                .split_once(":assumed-role/")
                .and_then(|(_, rest)| rest.split('/').next())
                .unwrap_or_default()
                .to_owned();
            let role_id = p
                .user_id
                .split_once(':')
                .map_or(p.user_id.as_str(), |(id, _)| id)
                .to_owned();
            UserIdentity {
                kind: "AssumedRole".to_owned(),
                session_context: Some(SessionContext {
                    session_issuer: SessionIssuer {
                        kind: "Role".to_owned(),
                        principal_id: role_id,
                        arn: format!("arn:aws:iam::{}:role/{role}", p.account_id),
                        account_id: p.account_id.clone(),
                        user_name: role,
                    },
                    attributes: SessionAttributes {
                        mfa_authenticated: "false".to_owned(),
                    },
                }),
                ..base
            }
        }
    }
}

/// The `Username` LookupEvents matches: the IAM user name, `root`, or the role session name.
pub fn username(identity: &UserIdentity) -> Option<String> {
    match identity.kind.as_str() {
        "Root" => Some("root".to_owned()),
        "IAMUser" => identity.user_name.clone(),
        "AssumedRole" => identity
            .arn
            .as_deref()
            .and_then(|a| a.rsplit('/').next())
            .map(str::to_owned),
        _ => None,
    }
}

fn string_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

/// The resources CloudTrail names for the call, where they are known.
fn resources(
    service: &str,
    region: &str,
    account: &str,
    request: &Value,
    response: &Value,
) -> Vec<Resource> {
    let one = |kind: &str, arn: String| {
        vec![Resource {
            account_id: arn.split(':').nth(4).unwrap_or(account).to_owned(),
            kind: kind.to_owned(),
            arn,
        }]
    };
    match service {
        "kms" => {
            let from_response = string_at(response, &["keyMetadata", "arn"])
                .or_else(|| string_at(response, &["keyId"]))
                .filter(|k| k.starts_with("arn:"));
            let from_request =
                string_at(request, &["keyId"]).and_then(|k| kms_key_arn(region, account, k));
            match from_response.map(str::to_owned).or(from_request) {
                Some(arn) => one("AWS::KMS::Key", arn),
                None => Vec::new(),
            }
        }
        "secretsmanager" => {
            let arn = string_at(response, &["aRN"])
                .or_else(|| string_at(response, &["arn"]))
                .or_else(|| string_at(request, &["secretId"]).filter(|s| s.starts_with("arn:")));
            match arn {
                Some(arn) => one("AWS::SecretsManager::Secret", arn.to_owned()),
                None => Vec::new(),
            }
        }
        "ssm" => match string_at(request, &["name"]) {
            Some(name) if name.starts_with("arn:") => one("AWS::SSM::Parameter", name.to_owned()),
            Some(name) => one(
                "AWS::SSM::Parameter",
                format!(
                    "arn:aws:ssm:{region}:{account}:parameter/{}",
                    name.trim_start_matches('/')
                ),
            ),
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// The output members [`resources`] reads (before the renaming to CloudTrail's casing).
const RESOURCE_MEMBERS: [&str; 4] = ["KeyMetadata", "KeyId", "ARN", "Arn"];

/// What of `output` the record needs. A read's record keeps no response, only the resource it
/// names: redacting a whole page of parameters (or a secret value) just to drop it would cost
/// more than the call, and copy plaintext for nothing.
fn needed_output(
    output: &OperationOutput,
    read_only: bool,
) -> std::borrow::Cow<'_, OperationOutput> {
    match output {
        OperationOutput::Json(Value::Object(members)) if read_only => {
            std::borrow::Cow::Owned(OperationOutput::Json(Value::Object(
                members
                    .iter()
                    .filter(|(k, _)| RESOURCE_MEMBERS.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )))
        }
        _ => std::borrow::Cow::Borrowed(output),
    }
}

/// A key id or key ARN as a key ARN (aliases name no key by themselves).
fn kms_key_arn(region: &str, account: &str, key: &str) -> Option<String> {
    if key.starts_with("arn:") {
        return key.contains(":key/").then(|| key.to_owned());
    }
    if key.starts_with("alias/") || key.is_empty() {
        return None;
    }
    Some(format!("arn:aws:kms:{region}:{account}:key/{key}"))
}

/// Replaces a field whose JSON is larger than [`MAX_FIELD_BYTES`].
fn bounded(v: Value) -> Value {
    let size = serde_json::to_vec(&v).map_or(0, |b| b.len());
    if size > MAX_FIELD_BYTES {
        serde_json::json!({"omitted": true, "originalSize": size})
    } else {
        v
    }
}

impl Record {
    /// Builds the record of a finished call at `now`; its `eventID` derives from the request id
    /// ([`citadel_api::cloudtrail_event_id`]).
    pub fn build(call: &Call<'_>, now: OffsetDateTime) -> Record {
        let service = call.service.name;
        let user_identity = user_identity(&call.caller);
        let account = match &call.caller {
            Caller::Principal(p) => p.account_id.clone(),
            Caller::Unauthenticated { .. } => call.fallback_account.to_owned(),
        };
        let region = if call.region.is_empty() {
            FALLBACK_REGION
        } else {
            call.region
        };
        let read_only = is_read_only(call.operation.name);
        let request_parameters =
            redact::request_parameters(service, call.operation.input, call.input);
        let (response_full, error_code, error_message) = match call.outcome {
            Ok(output) => (
                redact::response_elements(
                    service,
                    call.operation.output,
                    &needed_output(output, read_only),
                ),
                None,
                None,
            ),
            Err(e) => (
                Value::Null,
                Some(e.code.to_string()),
                e.message.clone().filter(|m| !m.is_empty()),
            ),
        };
        let resources = resources(
            service,
            region,
            &account,
            &request_parameters,
            &response_full,
        );
        // CloudTrail records no response for reads (a Decrypt's plaintext, a GetSecretValue's
        // value) and none for failures.
        let response_elements = if read_only {
            Value::Null
        } else {
            response_full
        };
        let mut user_agent = call.user_agent.unwrap_or_default().to_owned();
        if user_agent.len() > MAX_USER_AGENT {
            let mut cut = MAX_USER_AGENT;
            while !user_agent.is_char_boundary(cut) {
                cut -= 1;
            }
            user_agent.truncate(cut);
        }
        Record {
            event_version: EVENT_VERSION.to_owned(),
            user_identity,
            event_time: format_time(now),
            event_source: event_source(call.service),
            event_name: call.operation.name.to_owned(),
            aws_region: region.to_owned(),
            source_ip_address: call
                .source_ip
                .map_or_else(|| "AWS Internal".to_owned(), |ip| ip.to_string()),
            user_agent,
            error_code,
            error_message,
            request_parameters: bounded(request_parameters),
            response_elements: bounded(response_elements),
            request_id: call.request_id.to_owned(),
            event_id: citadel_api::cloudtrail_event_id(call.request_id),
            read_only,
            resources,
            event_type: "AwsApiCall".to_owned(),
            api_version: call.service.api_version.to_owned(),
            management_event: true,
            recipient_account_id: account,
            event_category: "Management".to_owned(),
            tls_details: call.tls.clone(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(name: &str) -> &'static OperationSpec {
        citadel_model::kms::SPEC.operation(name).unwrap()
    }

    fn principal(kind: PrincipalKind) -> Principal {
        match kind {
            PrincipalKind::Root => Principal::root("111122223333", "AKIAROOT"),
            PrincipalKind::User => Principal {
                account_id: "111122223333".into(),
                arn: "arn:aws:iam::111122223333:user/dev/Alice".into(),
                user_id: "AIDAALICE".into(),
                access_key_id: "AKIAALICE".into(),
                kind,
            },
            PrincipalKind::AssumedRole => Principal {
                account_id: "111122223333".into(),
                arn: "arn:aws:sts::111122223333:assumed-role/Admin/ci-run".into(),
                user_id: "AROAADMIN:ci-run".into(),
                access_key_id: "ASIATEMP".into(),
                kind,
            },
        }
    }

    fn decrypt_call<'a>(
        caller: Caller<'a>,
        input: &'a OperationInput,
        outcome: Result<&'a OperationOutput, &'a AwsError>,
    ) -> Call<'a> {
        Call {
            service: &citadel_model::kms::SPEC,
            operation: op("Decrypt"),
            request_id: "req-1",
            region: "us-west-2",
            caller,
            fallback_account: "000000000000",
            source_ip: Some("192.0.2.1".parse().unwrap()),
            user_agent: Some("aws-cli/2.0"),
            tls: None,
            input,
            outcome,
        }
    }

    const KEY: &str = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn a_decrypt_by_an_iam_user_reads_like_cloudtrail() {
        let p = principal(PrincipalKind::User);
        let input = OperationInput::Json(
            serde_json::to_vec(
                &json!({"CiphertextBlob": "AQID", "EncryptionContext": {"Project": "Alpha"}}),
            )
            .unwrap()
            .into(),
        );
        let output = OperationOutput::Json(
            json!({"KeyId": KEY, "Plaintext": "c2VjcmV0", "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}),
        );
        let now = time::macros::datetime!(2020-07-27 22:58:24 UTC);
        let r = Record::build(
            &decrypt_call(Caller::Principal(&p), &input, Ok(&output)),
            now,
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["eventVersion"], "1.11");
        assert_eq!(
            v["userIdentity"],
            json!({"type": "IAMUser", "principalId": "AIDAALICE",
                   "arn": "arn:aws:iam::111122223333:user/dev/Alice", "accountId": "111122223333",
                   "accessKeyId": "AKIAALICE", "userName": "Alice"})
        );
        assert_eq!(v["eventTime"], "2020-07-27T22:58:24Z");
        assert_eq!(v["eventSource"], "kms.amazonaws.com");
        assert_eq!(v["eventName"], "Decrypt");
        assert_eq!(v["awsRegion"], "us-west-2");
        assert_eq!(v["sourceIPAddress"], "192.0.2.1");
        assert_eq!(
            v["requestParameters"],
            json!({"ciphertextBlob": "AQID", "encryptionContext": {"Project": "Alpha"}})
        );
        assert_eq!(v["responseElements"], Value::Null);
        assert_eq!(v["readOnly"], true);
        assert_eq!(
            v["resources"],
            json!([{"accountId": "111122223333", "type": "AWS::KMS::Key", "ARN": KEY}])
        );
        assert_eq!(v["eventType"], "AwsApiCall");
        assert_eq!(v["managementEvent"], true);
        assert_eq!(v["eventCategory"], "Management");
        assert_eq!(v["recipientAccountId"], "111122223333");
        assert!(v.get("errorCode").is_none());
        assert!(!v.to_string().contains("c2VjcmV0"));
        // Field order is CloudTrail's.
        let text = serde_json::to_string(&r).unwrap();
        let pos = |k: &str| text.find(&format!("\"{k}\"")).unwrap();
        assert!(pos("eventVersion") < pos("userIdentity"));
        assert!(pos("userAgent") < pos("requestParameters"));
        assert!(pos("requestID") < pos("eventID"));
        assert!(pos("eventType") < pos("recipientAccountId"));
    }

    #[test]
    fn root_and_assumed_role_identities() {
        let root = principal(PrincipalKind::Root);
        let input = OperationInput::Json(b"{}".to_vec().into());
        let e = AwsError::new(400, "IncorrectKeyException", "wrong key");
        let r = Record::build(
            &decrypt_call(Caller::Principal(&root), &input, Err(&e)),
            OffsetDateTime::UNIX_EPOCH,
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v["userIdentity"],
            json!({"type": "Root", "principalId": "111122223333",
                   "arn": "arn:aws:iam::111122223333:root", "accountId": "111122223333",
                   "accessKeyId": "AKIAROOT"})
        );
        assert_eq!(v["errorCode"], "IncorrectKeyException");
        assert_eq!(v["errorMessage"], "wrong key");
        assert_eq!(username(&r.user_identity).as_deref(), Some("root"));

        let role = principal(PrincipalKind::AssumedRole);
        let r = Record::build(
            &decrypt_call(Caller::Principal(&role), &input, Err(&e)),
            OffsetDateTime::UNIX_EPOCH,
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["userIdentity"]["type"], "AssumedRole");
        assert_eq!(v["userIdentity"]["principalId"], "AROAADMIN:ci-run");
        assert_eq!(
            v["userIdentity"]["sessionContext"]["sessionIssuer"],
            json!({"type": "Role", "principalId": "AROAADMIN",
                   "arn": "arn:aws:iam::111122223333:role/Admin", "accountId": "111122223333",
                   "userName": "Admin"})
        );
        assert_eq!(
            v["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"],
            "false"
        );
        assert_eq!(username(&r.user_identity).as_deref(), Some("ci-run"));
    }

    #[test]
    fn an_authentication_failure_names_only_the_access_key() {
        let input = OperationInput::Json(b"{\"KeyId\":\"alias/x\"}".to_vec().into());
        let e = AwsError::new(
            400,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        );
        let mut call = decrypt_call(
            Caller::Unauthenticated {
                access_key_id: Some("AKIAUNKNOWN"),
            },
            &input,
            Err(&e),
        );
        call.region = "";
        let r = Record::build(&call, OffsetDateTime::UNIX_EPOCH);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v["userIdentity"],
            json!({"type": "Unknown", "accessKeyId": "AKIAUNKNOWN"})
        );
        assert_eq!(v["recipientAccountId"], "000000000000");
        assert_eq!(v["awsRegion"], FALLBACK_REGION);
        assert_eq!(v["errorCode"], "UnrecognizedClientException");
        assert_eq!(username(&r.user_identity), None);
    }

    #[test]
    fn mutating_calls_keep_redacted_responses_and_huge_fields_are_omitted() {
        let root = principal(PrincipalKind::Root);
        let big = "x".repeat(MAX_FIELD_BYTES + 10);
        let input = OperationInput::Json(
            serde_json::to_vec(&json!({"Description": big}))
                .unwrap()
                .into(),
        );
        let output = OperationOutput::Json(
            json!({"KeyMetadata": {"KeyId": "k", "Arn": KEY, "KeyState": "Enabled"}}),
        );
        let call = Call {
            operation: op("CreateKey"),
            ..decrypt_call(Caller::Principal(&root), &input, Ok(&output))
        };
        let r = Record::build(&call, OffsetDateTime::UNIX_EPOCH);
        assert!(!r.read_only);
        assert_eq!(r.response_elements["keyMetadata"]["arn"], KEY);
        assert_eq!(r.request_parameters["omitted"], true);
        assert_eq!(r.resources.len(), 1);
    }

    #[test]
    fn read_only_classification() {
        for op in [
            "Decrypt",
            "Encrypt",
            "GenerateDataKey",
            "GetSecretValue",
            "ListKeys",
            "DescribeKey",
        ] {
            assert!(is_read_only(op), "{op}");
        }
        for op in [
            "CreateKey",
            "PutParameter",
            "ScheduleKeyDeletion",
            "AssumeRole",
        ] {
            assert!(!is_read_only(op), "{op}");
        }
    }
}
