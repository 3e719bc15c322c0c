//! The handler end to end over a real sealed SQLite store, driven through `ServiceHandler::handle`
//! with JSON bodies as the wire delivers them; webhooks delivered to a real local HTTP receiver.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use citadel_api::{
    AwsError, OperationInput, OperationOutput, Principal, RequestContext, ServiceHandler,
};
use citadel_events::Event;
use citadel_store::{RootKey, SealedStore, SqliteBackend};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::{Bus, BusConfig, Events};

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";

fn ctx() -> RequestContext {
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

struct Harness {
    events: Events,
    bus: Arc<Bus>,
    files: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

fn config(files: &Path) -> BusConfig {
    BusConfig {
        file_target_dir: Some(files.to_path_buf()),
        retry_base: Duration::from_millis(20),
        retry_cap: Duration::from_millis(200),
        poll_interval: Duration::from_millis(20),
        request_timeout: Duration::from_secs(2),
        ..Default::default()
    }
}

async fn open_store(dir: &Path, root: &RootKey, init: bool) -> Arc<SealedStore> {
    let backend = Arc::new(SqliteBackend::open(dir).await.unwrap());
    let store = Arc::new(SealedStore::new(backend));
    if init {
        store.initialize_file(root).await.unwrap();
    }
    store.unseal_with_key(root).await.unwrap();
    store
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let root = RootKey::generate().unwrap();
    let store = open_store(dir.path(), &root, true).await;
    let bus = Arc::new(Bus::new(store, config(files.path())));
    Harness {
        events: Events::new(bus.clone()),
        bus,
        files,
        _dir: dir,
    }
}

impl Harness {
    async fn call(&self, op: &str, body: Value) -> Result<Value, AwsError> {
        let spec = self.events.spec().operation(op).unwrap();
        let input = OperationInput::Json(Bytes::from(body.to_string()));
        match self.events.handle(&ctx(), spec, input).await? {
            OperationOutput::Json(v) => Ok(v),
            OperationOutput::QueryXml(_) => unreachable!("events answers JSON"),
        }
    }

    async fn ok(&self, op: &str, body: Value) -> Value {
        self.call(op, body)
            .await
            .unwrap_or_else(|e| panic!("{op} failed: {e}"))
    }

    async fn err(&self, op: &str, body: Value) -> AwsError {
        match self.call(op, body).await {
            Ok(v) => panic!("{op} succeeded: {v}"),
            Err(e) => e,
        }
    }

    fn file_lines(&self, name: &str) -> Vec<Value> {
        let path = self.files.path().join(format!("{name}.jsonl"));
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn entry(detail: Value) -> Value {
    json!({"Source": "com.example.app", "DetailType": "Order Placed", "Detail": detail.to_string()})
}

// ---- rules ----------------------------------------------------------------------------------

#[tokio::test]
async fn rule_lifecycle_matches_eventbridge() {
    let h = harness().await;
    let pattern = json!({"source": ["com.example.app"]}).to_string();
    let out = h
        .ok(
            "PutRule",
            json!({"Name": "orders", "EventPattern": pattern, "Description": "d"}),
        )
        .await;
    assert_eq!(
        out["RuleArn"],
        format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/orders")
    );
    let d = h.ok("DescribeRule", json!({"Name": "orders"})).await;
    assert_eq!(d["State"], "ENABLED");
    assert_eq!(d["EventPattern"], pattern);
    assert_eq!(d["EventBusName"], "default");
    assert_eq!(d["CreatedBy"], ACCOUNT);

    h.ok("DisableRule", json!({"Name": "orders"})).await;
    assert_eq!(
        h.ok("DescribeRule", json!({"Name": "orders"})).await["State"],
        "DISABLED"
    );
    h.ok(
        "EnableRule",
        json!({"Name": "orders", "EventBusName": "default"}),
    )
    .await;
    assert_eq!(
        h.ok("DescribeRule", json!({"Name": "orders"})).await["State"],
        "ENABLED"
    );

    // PutRule replaces: the description is not kept.
    h.ok(
        "PutRule",
        json!({"Name": "orders", "EventPattern": pattern}),
    )
    .await;
    assert!(
        h.ok("DescribeRule", json!({"Name": "orders"}))
            .await
            .get("Description")
            .is_none()
    );

    let e = h.err("DescribeRule", json!({"Name": "nope"})).await;
    assert_eq!(e.code, "ResourceNotFoundException");
    assert_eq!(
        e.message.as_deref(),
        Some("Rule nope does not exist on EventBus default.")
    );
    let e = h.err("EnableRule", json!({"Name": "nope"})).await;
    assert_eq!(e.code, "ResourceNotFoundException");
    let e = h
        .err(
            "DescribeRule",
            json!({"Name": "orders", "EventBusName": "custom"}),
        )
        .await;
    assert_eq!(e.code, "ResourceNotFoundException");
    assert_eq!(
        e.message.as_deref(),
        Some("Event bus custom does not exist.")
    );

    h.ok("DeleteRule", json!({"Name": "orders"})).await;
    h.ok("DeleteRule", json!({"Name": "orders"})).await; // idempotent
    assert_eq!(
        h.err("DescribeRule", json!({"Name": "orders"})).await.code,
        "ResourceNotFoundException"
    );
}

#[tokio::test]
async fn invalid_patterns_and_missing_members_are_refused_precisely() {
    let h = harness().await;
    let e = h
        .err(
            "PutRule",
            json!({"Name": "r", "EventPattern": r#"{"a":[{"numeric":[">",1,"<",1]}]}"#}),
        )
        .await;
    assert_eq!(e.code, "InvalidEventPatternException");
    assert_eq!(
        e.message.as_deref(),
        Some("Event pattern is not valid. Reason: Bottom must be less than top")
    );
    let e = h.err("PutRule", json!({"Name": "r"})).await;
    assert_eq!(e.code, "ValidationException");
    assert_eq!(
        e.message.as_deref(),
        Some("Parameter(s) EventPattern or ScheduleExpression must be specified.")
    );
    let e = h
        .err(
            "PutRule",
            json!({"Name": "r", "ScheduleExpression": "rate(5 minutes)"}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
    let e = h
        .err(
            "PutRule",
            json!({"Name": "bad name!", "EventPattern": "{\"a\":[1]}"}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
    let e = h
        .err(
            "PutRule",
            json!({"Name": "r", "EventPattern": "{\"a\":[1]}", "State": "ON"}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
}

#[tokio::test]
async fn list_rules_filters_by_prefix_and_pages() {
    let h = harness().await;
    for name in ["alpha-1", "alpha-2", "alpha-3", "beta-1"] {
        h.ok(
            "PutRule",
            json!({"Name": name, "EventPattern": "{\"source\":[\"x\"]}"}),
        )
        .await;
    }
    let all = h.ok("ListRules", json!({})).await;
    assert_eq!(all["Rules"].as_array().unwrap().len(), 4);
    assert!(all.get("NextToken").is_none());

    let first = h
        .ok("ListRules", json!({"NamePrefix": "alpha", "Limit": 2}))
        .await;
    let names: Vec<&str> = first["Rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha-1", "alpha-2"]);
    let token = first["NextToken"].as_str().unwrap();
    let second = h
        .ok(
            "ListRules",
            json!({"NamePrefix": "alpha", "Limit": 2, "NextToken": token}),
        )
        .await;
    let names: Vec<&str> = second["Rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha-3"]);
    assert!(second.get("NextToken").is_none());
    assert_eq!(
        second["Rules"][0]["Arn"],
        format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/alpha-3")
    );
}

// ---- targets --------------------------------------------------------------------------------

#[tokio::test]
async fn targets_put_list_remove_and_delete_rule_guard() {
    let h = harness().await;
    h.ok(
        "PutRule",
        json!({"Name": "r", "EventPattern": "{\"source\":[\"com.example.app\"]}"}),
    )
    .await;
    let out = h
        .ok(
            "PutTargets",
            json!({"Rule": "r", "Targets": [{"Id": "audit", "Arn": "arn:citadel:events:::file/audit"}]}),
        )
        .await;
    assert_eq!(out["FailedEntryCount"], 0);
    let listed = h.ok("ListTargetsByRule", json!({"Rule": "r"})).await;
    assert_eq!(listed["Targets"][0]["Id"], "audit");
    assert_eq!(
        listed["Targets"][0]["Arn"],
        "arn:citadel:events:::file/audit"
    );

    let e = h.err("DeleteRule", json!({"Name": "r"})).await;
    assert_eq!(e.code, "ValidationException");
    assert_eq!(
        e.message.as_deref(),
        Some("Rule can't be deleted since it has targets.")
    );

    let e = h
        .err(
            "PutTargets",
            json!({"Rule": "r", "Targets": [{"Id": "q", "Arn": "arn:aws:sqs:us-east-1:111122223333:queue"}]}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
    assert!(e.message.unwrap().contains("not supported by Citadel"));

    let e = h
        .err(
            "PutTargets",
            json!({"Rule": "r", "Targets": [{"Id": "x", "Arn": "arn:citadel:events:::file/x", "Input": "{", "InputPath": "$"}]}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");

    let e = h
        .err(
            "PutTargets",
            json!({"Rule": "missing", "Targets": [{"Id": "a", "Arn": "arn:citadel:events:::file/a"}]}),
        )
        .await;
    assert_eq!(e.code, "ResourceNotFoundException");

    let five: Vec<Value> = (0..5)
        .map(|i| json!({"Id": format!("t{i}"), "Arn": "arn:citadel:events:::file/a"}))
        .collect();
    let e = h
        .err("PutTargets", json!({"Rule": "r", "Targets": five}))
        .await;
    assert_eq!(e.code, "LimitExceededException");

    h.ok("RemoveTargets", json!({"Rule": "r", "Ids": ["audit"]}))
        .await;
    assert_eq!(
        h.ok("ListTargetsByRule", json!({"Rule": "r"})).await["Targets"],
        json!([])
    );
    h.ok("DeleteRule", json!({"Name": "r"})).await;
}

// ---- PutEvents ------------------------------------------------------------------------------

#[tokio::test]
async fn put_events_limits_and_per_entry_failures() {
    let h = harness().await;
    let eleven: Vec<Value> = (0..11).map(|i| entry(json!({"n": i}))).collect();
    let e = h.err("PutEvents", json!({"Entries": eleven})).await;
    assert_eq!(e.code, "ValidationException");
    assert!(
        e.message
            .unwrap()
            .contains("Member must have length less than or equal to 10")
    );

    let big = "x".repeat(257 * 1024);
    let e = h
        .err(
            "PutEvents",
            json!({"Entries": [entry(json!({"big": big}))]}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
    assert_eq!(
        e.message.as_deref(),
        Some("Total size of the entries in the request is over the limit.")
    );

    let out = h
        .ok(
            "PutEvents",
            json!({"Entries": [
                entry(json!({"ok": true})),
                {"Source": "com.example.app", "DetailType": "T"},
                {"Source": "com.example.app", "DetailType": "T", "Detail": "[1,2]"},
                {"Source": "aws.kms", "DetailType": "T", "Detail": "{}"},
                {"Source": "s", "DetailType": "T", "Detail": "{}", "EventBusName": "other"},
            ]}),
        )
        .await;
    assert_eq!(out["FailedEntryCount"], 4);
    let entries = out["Entries"].as_array().unwrap();
    assert!(uuid::Uuid::parse_str(entries[0]["EventId"].as_str().unwrap()).is_ok());
    assert_eq!(entries[1]["ErrorCode"], "InvalidArgument");
    assert_eq!(entries[2]["ErrorCode"], "MalformedDetail");
    assert_eq!(entries[3]["ErrorCode"], "NotAuthorizedForSourceException");
    assert_eq!(entries[4]["ErrorCode"], "ResourceNotFoundException");
}

#[tokio::test]
async fn put_events_reach_file_targets_with_input_transformer() {
    let h = harness().await;
    h.ok(
        "PutRule",
        json!({"Name": "big-orders", "EventPattern": json!({"source": ["com.example.app"], "detail": {"amount": [{"numeric": [">", 100]}]}}).to_string()}),
    )
    .await;
    h.ok(
        "PutTargets",
        json!({"Rule": "big-orders", "Targets": [
            {"Id": "whole", "Arn": "arn:citadel:events:::file/orders"},
            {"Id": "shaped", "Arn": "arn:citadel:events:::file/shaped", "InputTransformer": {
                "InputPathsMap": {"amount": "$.detail.amount", "who": "$.detail.customer"},
                "InputTemplate": "{\"summary\": \"<who> spent <amount>\", \"amount\": <amount>, \"rule\": \"<aws.events.rule-name>\"}"
            }}
        ]}),
    )
    .await;
    let out = h
        .ok(
            "PutEvents",
            json!({"Entries": [
                entry(json!({"amount": 500, "customer": "ana"})),
                entry(json!({"amount": 5, "customer": "bo"})),
            ]}),
        )
        .await;
    assert_eq!(out["FailedEntryCount"], 0);
    let id = out["Entries"][0]["EventId"].as_str().unwrap().to_owned();
    assert_eq!(h.bus.pending(100).await.unwrap().len(), 2);

    let pass = h.bus.deliver_due().await.unwrap();
    assert_eq!(pass.delivered, 2);
    assert!(h.bus.pending(100).await.unwrap().is_empty());

    let whole = h.file_lines("orders");
    assert_eq!(whole.len(), 1);
    assert_eq!(whole[0]["id"], id);
    assert_eq!(whole[0]["detail-type"], "Order Placed");
    assert_eq!(whole[0]["account"], ACCOUNT);
    assert_eq!(whole[0]["version"], "0");
    assert_eq!(
        h.file_lines("shaped"),
        vec![json!({"summary": "ana spent 500", "amount": 500, "rule": "big-orders"})]
    );
}

#[tokio::test]
async fn read_only_cloudtrail_events_reach_only_rules_that_ask_for_them() {
    let h = harness().await;
    let pattern =
        json!({"source": ["aws.kms"], "detail-type": ["AWS API Call via CloudTrail"]}).to_string();
    h.ok(
        "PutRule",
        json!({"Name": "writes", "EventPattern": pattern}),
    )
    .await;
    h.ok(
        "PutRule",
        json!({"Name": "all", "EventPattern": pattern, "State": "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"}),
    )
    .await;
    h.ok(
        "PutRule",
        json!({"Name": "off", "EventPattern": pattern, "State": "DISABLED"}),
    )
    .await;
    let call = |read_only: bool| {
        Event::new(
            "aws.kms",
            "AWS API Call via CloudTrail",
            json!({"eventName": if read_only {"Decrypt"} else {"CreateKey"}, "readOnly": read_only}),
            ACCOUNT,
            REGION,
            vec![],
            None,
        )
        .unwrap()
    };
    let r = h.bus.publish(&call(true)).await.unwrap();
    assert_eq!(r.matched_rules, ["all"]);
    let mut w = h.bus.publish(&call(false)).await.unwrap().matched_rules;
    w.sort();
    assert_eq!(w, ["all", "writes"]);
    // Another account's rules never see it.
    let mut other = call(false);
    other.account = "444455556666".into();
    assert!(
        h.bus
            .publish(&other)
            .await
            .unwrap()
            .matched_rules
            .is_empty()
    );
}

#[tokio::test]
async fn publishing_uses_cached_rules_that_every_rule_change_refreshes() {
    let h = harness().await;
    let event = || {
        Event::new(
            "aws.kms",
            "AWS API Call via CloudTrail",
            json!({"eventName": "CreateKey", "readOnly": false}),
            ACCOUNT,
            REGION,
            vec![],
            None,
        )
        .unwrap()
    };
    let matched = || async { h.bus.publish(&event()).await.unwrap().matched_rules };
    let kms = json!({"source": ["aws.kms"]}).to_string();
    let ssm = json!({"source": ["aws.ssm"]}).to_string();
    assert!(matched().await.is_empty());
    h.ok("PutRule", json!({"Name": "r", "EventPattern": kms}))
        .await;
    assert_eq!(matched().await, ["r"]);
    h.ok("DisableRule", json!({"Name": "r"})).await;
    assert!(matched().await.is_empty());
    h.ok("EnableRule", json!({"Name": "r"})).await;
    assert_eq!(matched().await, ["r"]);
    h.ok("PutRule", json!({"Name": "r", "EventPattern": ssm}))
        .await;
    assert!(matched().await.is_empty());
    h.ok("PutRule", json!({"Name": "r", "EventPattern": kms}))
        .await;
    h.ok("DeleteRule", json!({"Name": "r"})).await;
    assert!(matched().await.is_empty());

    // A rule written behind the bus's back (another node) is not seen until the cache is
    // invalidated: publishing reads the cache, not the store.
    h.ok("PutRule", json!({"Name": "seen", "EventPattern": kms}))
        .await;
    assert_eq!(matched().await, ["seen"]);
    let key = crate::records::rule_key(REGION, ACCOUNT, "seen");
    h.bus
        .store
        .delete(&key, citadel_store::Expect::Any)
        .await
        .unwrap();
    assert_eq!(matched().await, ["seen"]);
    h.bus.invalidate_rules();
    assert!(matched().await.is_empty());
}

// ---- TestEventPattern -----------------------------------------------------------------------

#[tokio::test]
async fn test_event_pattern_answers_and_validates() {
    let h = harness().await;
    let event = json!({"id": "1", "account": ACCOUNT, "source": "com.example", "time": "2024-01-01T00:00:00Z",
        "region": REGION, "resources": [], "detail-type": "T", "detail": {"n": 7}})
    .to_string();
    let yes = h
        .ok("TestEventPattern", json!({"EventPattern": "{\"detail\":{\"n\":[{\"numeric\":[\">\",5]}]}}", "Event": event}))
        .await;
    assert_eq!(yes["Result"], true);
    let no = h
        .ok("TestEventPattern", json!({"EventPattern": "{\"detail\":{\"n\":[{\"numeric\":[\"<\",5]}]}}", "Event": event}))
        .await;
    assert_eq!(no["Result"], false);
    let e = h
        .err(
            "TestEventPattern",
            json!({"EventPattern": "{\"a\":[{\"exists\":\"yes\"}]}", "Event": event}),
        )
        .await;
    assert_eq!(e.code, "InvalidEventPatternException");
    assert_eq!(
        e.message.as_deref(),
        Some(
            "Event pattern is not valid. Reason: exists match pattern must be either true or false."
        )
    );
    let e = h
        .err(
            "TestEventPattern",
            json!({"EventPattern": "{\"a\":[1]}", "Event": "{\"source\":\"x\"}"}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
}

// ---- connections and API destinations -------------------------------------------------------

const SECRET: &str = "s3cr3t-api-key-value";

async fn api_key_connection(h: &Harness, name: &str) -> String {
    let out = h
        .ok(
            "CreateConnection",
            json!({"Name": name, "AuthorizationType": "API_KEY",
                   "AuthParameters": {"ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": SECRET},
                                      "InvocationHttpParameters": {"HeaderParameters": [
                                          {"Key": "x-team", "Value": "sec", "IsValueSecret": false},
                                          {"Key": "x-hidden", "Value": "hidden-value", "IsValueSecret": true}]}}}),
        )
        .await;
    assert_eq!(out["ConnectionState"], "AUTHORIZED");
    out["ConnectionArn"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn connections_keep_secrets_out_of_describe_list_and_debug() {
    let h = harness().await;
    let arn = api_key_connection(&h, "hooks").await;
    assert!(arn.starts_with(&format!(
        "arn:aws:events:{REGION}:{ACCOUNT}:connection/hooks/"
    )));
    let d = h.ok("DescribeConnection", json!({"Name": "hooks"})).await;
    let text = d.to_string();
    assert!(!text.contains(SECRET), "{text}");
    assert!(!text.contains("hidden-value"), "{text}");
    assert_eq!(
        d["AuthParameters"]["ApiKeyAuthParameters"]["ApiKeyName"],
        "x-api-key"
    );
    assert_eq!(d["AuthorizationType"], "API_KEY");
    assert_eq!(
        d["AuthParameters"]["InvocationHttpParameters"]["HeaderParameters"][0]["Value"],
        "sec"
    );
    let listed = h.ok("ListConnections", json!({})).await;
    assert_eq!(listed["Connections"][0]["Name"], "hooks");
    assert!(!listed.to_string().contains(SECRET));

    let key = crate::records::connection_key(REGION, ACCOUNT, "hooks");
    let record: crate::records::ConnectionRecord =
        h.bus.store.get_json(&key).await.unwrap().unwrap();
    assert!(!format!("{record:?}").contains(SECRET));

    let e = h
        .err(
            "CreateConnection",
            json!({"Name": "hooks", "AuthorizationType": "BASIC",
            "AuthParameters": {"BasicAuthParameters": {"Username": "u", "Password": "p"}}}),
        )
        .await;
    assert_eq!(e.code, "ResourceAlreadyExistsException");
    let e = h
        .err(
            "CreateConnection",
            json!({"Name": "c2", "AuthorizationType": "BASIC",
            "AuthParameters": {"ApiKeyAuthParameters": {"ApiKeyName": "k", "ApiKeyValue": "v"}}}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");

    let dest = h
        .ok("CreateApiDestination", json!({"Name": "hook", "ConnectionArn": arn,
            "InvocationEndpoint": "https://example.com/hook", "HttpMethod": "POST", "InvocationRateLimitPerSecond": 10}))
        .await;
    assert_eq!(dest["ApiDestinationState"], "ACTIVE");
    let d = h
        .ok("DescribeApiDestination", json!({"Name": "hook"}))
        .await;
    assert_eq!(d["InvocationEndpoint"], "https://example.com/hook");
    assert_eq!(d["InvocationRateLimitPerSecond"], 10);
    assert_eq!(
        h.ok("ListApiDestinations", json!({"ConnectionArn": arn}))
            .await["ApiDestinations"][0]["Name"],
        "hook"
    );
    let e = h
        .err(
            "CreateApiDestination",
            json!({"Name": "h2", "ConnectionArn": format!("{arn}x"),
            "InvocationEndpoint": "https://example.com", "HttpMethod": "POST"}),
        )
        .await;
    assert_eq!(e.code, "ResourceNotFoundException");
    h.ok("DeleteApiDestination", json!({"Name": "hook"})).await;
    assert_eq!(
        h.err("DescribeApiDestination", json!({"Name": "hook"}))
            .await
            .code,
        "ResourceNotFoundException"
    );
    assert_eq!(
        h.ok("DeleteConnection", json!({"Name": "hooks"})).await["ConnectionState"],
        "DELETING"
    );
    assert_eq!(
        h.err("DescribeConnection", json!({"Name": "hooks"}))
            .await
            .code,
        "ResourceNotFoundException"
    );
}

// ---- webhook delivery -----------------------------------------------------------------------

/// A local webhook receiver recording (headers, body) of each request.
struct Hook {
    received: Arc<Mutex<Vec<(String, String)>>>,
    status: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl Hook {
    async fn start(listener: TcpListener) -> Hook {
        let received = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (r, s) = (received.clone(), status.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (r, s) = (r.clone(), s.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head, body) = loop {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..at]).to_string();
                            let len = head
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap())
                                })
                                .unwrap_or(0);
                            while buf.len() < at + 4 + len {
                                let n = sock.read(&mut chunk).await.unwrap_or(0);
                                if n == 0 {
                                    return;
                                }
                                buf.extend_from_slice(&chunk[..n]);
                            }
                            break (
                                head,
                                String::from_utf8_lossy(&buf[at + 4..at + 4 + len]).to_string(),
                            );
                        }
                    };
                    let code = s.load(Ordering::SeqCst);
                    let token = head.to_ascii_lowercase().contains(" /token");
                    r.lock().unwrap().push((head, body));
                    let reply = if token {
                        let json =
                            r#"{"access_token":"tok-123","token_type":"Bearer","expires_in":3600}"#;
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
                            json.len()
                        )
                    } else {
                        format!(
                            "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                    };
                    let _ = sock.write_all(reply.as_bytes()).await;
                });
            }
        });
        Hook {
            received,
            status,
            task,
        }
    }

    fn bodies(&self) -> Vec<Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| serde_json::from_str(b).unwrap())
            .collect()
    }
}

async fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

async fn webhook_rule(h: &Harness, port: u16, retry: Value) {
    let conn = api_key_connection(h, "hooks").await;
    let dest = h
        .ok(
            "CreateApiDestination",
            json!({"Name": "hook", "ConnectionArn": conn,
            "InvocationEndpoint": format!("http://127.0.0.1:{port}/hook/*"), "HttpMethod": "POST"}),
        )
        .await;
    h.ok(
        "PutRule",
        json!({"Name": "to-hook", "EventPattern": "{\"source\":[\"com.example.app\"]}"}),
    )
    .await;
    h.ok(
        "PutTargets",
        json!({"Rule": "to-hook", "Targets": [{"Id": "hook", "Arn": dest["ApiDestinationArn"], "RetryPolicy": retry,
            "HttpParameters": {"PathParameterValues": ["$.detail.n"], "QueryStringParameters": {"q": "1"}}}]}),
    )
    .await;
}

async fn put(h: &Harness, n: usize) -> Vec<String> {
    let entries: Vec<Value> = (0..n).map(|i| entry(json!({"n": i}))).collect();
    let out = h.ok("PutEvents", json!({"Entries": entries})).await;
    assert_eq!(out["FailedEntryCount"], 0);
    out["Entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["EventId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_webhook_that_is_down_then_up_receives_every_event() {
    let h = harness().await;
    let port = free_port().await;
    webhook_rule(
        &h,
        port,
        json!({"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 3600}),
    )
    .await;
    let ids = put(&h, 5).await;

    // Down: nothing listens; every attempt fails and is rescheduled, nothing is lost.
    let pass = h.bus.deliver_due().await.unwrap();
    assert_eq!(pass.retried, 5);
    tokio::time::sleep(Duration::from_millis(60)).await;
    let pass = h.bus.deliver_due().await.unwrap();
    assert_eq!(pass.retried + pass.waiting, 5);
    let pending = h.bus.pending(100).await.unwrap();
    assert_eq!(pending.len(), 5);
    assert!(
        pending
            .iter()
            .all(|d| d.attempts >= 1 && d.last_error.is_some())
    );

    // Up: the background loop delivers everything.
    let hook = Hook::start(TcpListener::bind(("127.0.0.1", port)).await.unwrap()).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(h.bus.clone().run_delivery(async move {
        let _ = stopped.await;
    }));
    for _ in 0..200 {
        if h.bus.pending(100).await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    worker.await.unwrap();
    assert!(h.bus.pending(100).await.unwrap().is_empty());
    assert!(h.bus.dead_letters(100).await.unwrap().is_empty());

    let mut got: Vec<String> = hook
        .bodies()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect();
    got.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got, want, "each event exactly once in this run");
    let requests = hook.received.lock().unwrap().clone();
    for (head, body) in &requests {
        let lower = head.to_ascii_lowercase();
        let body: Value = serde_json::from_str(body).unwrap();
        assert!(
            lower.starts_with(&format!("post /hook/{}?q=1 http/1.1", body["detail"]["n"])),
            "{head}"
        );
        assert!(lower.contains(&format!("x-api-key: {SECRET}")));
        assert!(lower.contains("x-team: sec"));
        assert!(lower.contains("x-hidden: hidden-value"));
        assert!(lower.contains(&format!(
            "x-citadel-event-id: {}",
            body["id"].as_str().unwrap()
        )));
        assert!(lower.contains("user-agent: amazon/eventbridge/apidestinations"));
        assert!(lower.contains("content-type: application/json; charset=utf-8"));
    }
    hook.task.abort();
}

#[tokio::test]
async fn exhausted_and_permanent_failures_dead_letter_and_redrive() {
    let h = harness().await;
    let port = free_port().await;
    let hook = Hook::start(TcpListener::bind(("127.0.0.1", port)).await.unwrap()).await;
    webhook_rule(
        &h,
        port,
        json!({"MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 60}),
    )
    .await;

    // 503 is retried once, then dead-lettered.
    hook.status.store(503, Ordering::SeqCst);
    let ids = put(&h, 1).await;
    assert_eq!(h.bus.deliver_due().await.unwrap().retried, 1);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(h.bus.deliver_due().await.unwrap().dead_lettered, 1);
    // 400 is not retried at all.
    hook.status.store(400, Ordering::SeqCst);
    let more = put(&h, 1).await;
    assert_eq!(h.bus.deliver_due().await.unwrap().dead_lettered, 1);

    let dead = h.bus.dead_letters(100).await.unwrap();
    assert_eq!(dead.len(), 2);
    assert!(
        dead.iter()
            .any(|d| d.reason.contains("retries exhausted after 2 attempts"))
    );
    assert!(
        dead.iter()
            .any(|d| d.reason.contains("not retryable") && d.reason.contains("HTTP 400"))
    );
    assert!(h.bus.pending(10).await.unwrap().is_empty());

    // Redrive one by event id, then the rest, once the receiver works.
    hook.status.store(200, Ordering::SeqCst);
    assert_eq!(h.bus.redrive(Some(&[more[0].clone()])).await.unwrap(), 1);
    assert_eq!(h.bus.deliver_due().await.unwrap().delivered, 1);
    assert_eq!(h.bus.redrive(None).await.unwrap(), 1);
    assert_eq!(h.bus.deliver_due().await.unwrap().delivered, 1);
    assert!(h.bus.dead_letters(10).await.unwrap().is_empty());
    let delivered: Vec<String> = hook
        .bodies()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(delivered.contains(&ids[0]) && delivered.contains(&more[0]));
    hook.task.abort();
}

#[tokio::test]
async fn accepted_events_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let root = RootKey::generate().unwrap();
    {
        let store = open_store(dir.path(), &root, true).await;
        let bus = Arc::new(Bus::new(store, config(files.path())));
        let events = Events::new(bus.clone());
        let h = Harness {
            events,
            bus,
            files: tempfile::tempdir().unwrap(),
            _dir: tempfile::tempdir().unwrap(),
        };
        h.ok(
            "PutRule",
            json!({"Name": "r", "EventPattern": "{\"source\":[\"com.example.app\"]}"}),
        )
        .await;
        h.ok(
            "PutTargets",
            json!({"Rule": "r", "Targets": [{"Id": "f", "Arn": "arn:citadel:events:::file/kept"}]}),
        )
        .await;
        put(&h, 3).await;
        // The process "stops" here: nothing was delivered.
    }
    let store = open_store(dir.path(), &root, false).await;
    let bus = Arc::new(Bus::new(store, config(files.path())));
    assert_eq!(bus.pending(10).await.unwrap().len(), 3);
    assert_eq!(bus.deliver_due().await.unwrap().delivered, 3);
    let lines = std::fs::read_to_string(files.path().join("kept.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 3);
}

#[tokio::test]
async fn sealed_store_answers_503() {
    let h = harness().await;
    h.bus.store.seal();
    let e = h.err("ListRules", json!({})).await;
    assert_eq!(e.status, 503);
}

#[tokio::test]
async fn oauth_client_credentials_connections_fetch_and_use_a_token() {
    let h = harness().await;
    let port = free_port().await;
    let hook = Hook::start(TcpListener::bind(("127.0.0.1", port)).await.unwrap()).await;
    let conn = h
        .ok(
            "CreateConnection",
            json!({"Name": "oauth", "AuthorizationType": "OAUTH_CLIENT_CREDENTIALS",
                "AuthParameters": {"OAuthParameters": {
                    "ClientParameters": {"ClientID": "client-1", "ClientSecret": "client-secret-xyz"},
                    "AuthorizationEndpoint": format!("http://127.0.0.1:{port}/token"),
                    "HttpMethod": "POST",
                    "OAuthHttpParameters": {"BodyParameters": [{"Key": "scope", "Value": "events", "IsValueSecret": false}]}}}}),
        )
        .await;
    assert_eq!(conn["ConnectionState"], "AUTHORIZING");
    let described = h.ok("DescribeConnection", json!({"Name": "oauth"})).await;
    assert!(!described.to_string().contains("client-secret-xyz"));
    assert_eq!(
        described["AuthParameters"]["OAuthParameters"]["ClientParameters"]["ClientID"],
        "client-1"
    );
    let dest = h
        .ok(
            "CreateApiDestination",
            json!({"Name": "d", "ConnectionArn": conn["ConnectionArn"],
            "InvocationEndpoint": format!("http://127.0.0.1:{port}/hook"), "HttpMethod": "PUT"}),
        )
        .await;
    h.ok(
        "PutRule",
        json!({"Name": "r", "EventPattern": "{\"source\":[\"com.example.app\"]}"}),
    )
    .await;
    h.ok(
        "PutTargets",
        json!({"Rule": "r", "Targets": [{"Id": "d", "Arn": dest["ApiDestinationArn"]}]}),
    )
    .await;
    put(&h, 2).await;
    assert_eq!(h.bus.deliver_due().await.unwrap().delivered, 2);

    let requests = hook.received.lock().unwrap().clone();
    let token_requests: Vec<_> = requests
        .iter()
        .filter(|(head, _)| head.contains(" /token"))
        .collect();
    assert!(!token_requests.is_empty());
    let (head, body) = token_requests[0];
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        "client-1:client-secret-xyz",
    );
    assert!(head.to_ascii_lowercase().contains(&format!(
        "authorization: basic {}",
        basic.to_ascii_lowercase()
    )));
    assert!(body.contains("grant_type=client_credentials") && body.contains("scope=events"));
    let calls: Vec<_> = requests
        .iter()
        .filter(|(head, _)| head.starts_with("PUT /hook"))
        .collect();
    assert_eq!(calls.len(), 2);
    assert!(
        calls
            .iter()
            .all(|(head, _)| head.contains("authorization: Bearer tok-123"))
    );
    let after = h.ok("DescribeConnection", json!({"Name": "oauth"})).await;
    assert_eq!(after["ConnectionState"], "AUTHORIZED");
    assert!(after.get("LastAuthorizedTime").is_some());
    hook.task.abort();
}
