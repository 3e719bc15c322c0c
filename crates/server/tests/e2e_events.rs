//! The event bus against the real binary in `--dev` mode with the `aws` CLI: rules with patterns,
//! the operator file target, PutEvents with its limits, TestEventPattern, and a webhook API
//! destination that is down first and receives the event once it is up (at-least-once delivery).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

use common::{Server, json, stderr};
use serde_json::{Value, json};

const ACCOUNT: &str = "111122223333";
const SECRET: &str = "dev-secret";

fn ok(server: &Server, args: &[&str]) -> Value {
    let out = server.aws(ACCOUNT, SECRET, args);
    assert!(out.status.success(), "aws {args:?}: {}", stderr(&out));
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        json(&out)
    }
}

fn fails(server: &Server, args: &[&str]) -> String {
    let out = server.aws(ACCOUNT, SECRET, args);
    assert!(!out.status.success(), "aws {args:?} unexpectedly succeeded");
    stderr(&out)
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn rules_route_matching_events_to_the_file_target() {
    let server = Server::dev().start();
    let pattern =
        r#"{"source":["my.app"],"detail":{"level":["error"],"code":[{"numeric":[">=",500]}]}}"#;
    let rule = ok(
        &server,
        &[
            "events",
            "put-rule",
            "--name",
            "errors",
            "--event-pattern",
            pattern,
        ],
    );
    assert_eq!(
        rule["RuleArn"],
        format!("arn:aws:events:us-east-1:{ACCOUNT}:rule/errors")
    );
    ok(
        &server,
        &[
            "events",
            "put-targets",
            "--rule",
            "errors",
            "--targets",
            "Id=ops,Arn=arn:citadel:events:::file/ops",
        ],
    );
    let described = ok(&server, &["events", "describe-rule", "--name", "errors"]);
    assert_eq!(described["State"], "ENABLED");
    let entries = json!([
        {"Source": "my.app", "DetailType": "log", "Detail": r#"{"level":"error","code":503}"#},
        {"Source": "my.app", "DetailType": "log", "Detail": r#"{"level":"error","code":404}"#},
        {"Source": "other", "DetailType": "log", "Detail": r#"{"level":"error","code":503}"#},
        {"Source": "my.app", "DetailType": "log", "Detail": "not json"},
    ])
    .to_string();
    let put = ok(&server, &["events", "put-events", "--entries", &entries]);
    assert_eq!(put["FailedEntryCount"], 1, "{put}");
    assert_eq!(put["Entries"][3]["ErrorCode"], "MalformedDetail");
    let matched_id = put["Entries"][0]["EventId"].as_str().unwrap().to_owned();

    let file = server.data_dir.join("events").join("ops.jsonl");
    wait_for("the file target", || file.exists());
    let lines: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["id"], matched_id.as_str());
    assert_eq!(lines[0]["detail-type"], "log");
    assert_eq!(lines[0]["account"], ACCOUNT);
    assert_eq!(lines[0]["detail"]["code"], 503);

    // TestEventPattern answers from the same matcher; bad patterns are refused precisely.
    let event = json!({"id": "1", "source": "my.app", "detail-type": "log", "account": ACCOUNT,
        "time": "2026-11-29T00:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"level": "error", "code": 500}})
    .to_string();
    let t = ok(
        &server,
        &[
            "events",
            "test-event-pattern",
            "--event-pattern",
            pattern,
            "--event",
            &event,
        ],
    );
    assert_eq!(t["Result"], true);
    let err = fails(
        &server,
        &[
            "events",
            "put-rule",
            "--name",
            "bad",
            "--event-pattern",
            r#"{"detail":{"code":[{"numeric":[">",10,"<",5]}]}}"#,
        ],
    );
    assert!(err.contains("InvalidEventPatternException"), "{err}");
    // PutEvents takes at most 10 entries.
    let eleven = serde_json::to_string(
        &(0..11)
            .map(|_| json!({"Source": "my.app", "DetailType": "x", "Detail": "{}"}))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let err = fails(&server, &["events", "put-events", "--entries", &eleven]);
    assert!(err.contains("ValidationException"), "{err}");
    // A rule with targets cannot be deleted; disabled rules route nothing.
    let err = fails(&server, &["events", "delete-rule", "--name", "errors"]);
    assert!(err.contains("ValidationException"), "{err}");
    ok(&server, &["events", "disable-rule", "--name", "errors"]);
    ok(&server, &["events", "put-events", "--entries", &entries]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 1);
    ok(
        &server,
        &[
            "events",
            "remove-targets",
            "--rule",
            "errors",
            "--ids",
            "ops",
        ],
    );
    ok(&server, &["events", "delete-rule", "--name", "errors"]);
}

/// A webhook that refuses connections at first: the event waits in the durable outbox and is
/// delivered, with its id in `X-Citadel-Event-Id`, once the receiver listens.
#[test]
fn an_api_destination_receives_events_after_being_down() {
    let server = Server::dev().start();
    // Reserve a port, then close it so the first attempts are refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let conn = ok(
        &server,
        &[
            "events",
            "create-connection",
            "--name",
            "hook",
            "--authorization-type",
            "API_KEY",
            "--auth-parameters",
            r#"{"ApiKeyAuthParameters":{"ApiKeyName":"x-api-key","ApiKeyValue":"s3cr3t"}}"#,
        ],
    );
    let conn_arn = conn["ConnectionArn"].as_str().unwrap().to_owned();
    let described = ok(
        &server,
        &["events", "describe-connection", "--name", "hook"],
    );
    assert!(!described.to_string().contains("s3cr3t"), "{described}");
    // As JSON input: aws CLI v1 would fetch an `http://` parameter value itself.
    let input = json!({"Name": "receiver", "ConnectionArn": conn_arn,
        "InvocationEndpoint": format!("http://127.0.0.1:{port}/hook"), "HttpMethod": "POST"})
    .to_string();
    let dest = ok(
        &server,
        &[
            "events",
            "create-api-destination",
            "--cli-input-json",
            &input,
        ],
    );
    let dest_arn = dest["ApiDestinationArn"].as_str().unwrap().to_owned();
    ok(
        &server,
        &[
            "events",
            "put-rule",
            "--name",
            "all",
            "--event-pattern",
            r#"{"source":["my.app"]}"#,
        ],
    );
    let targets = json!([{"Id": "hook", "Arn": dest_arn,
        "RoleArn": format!("arn:aws:iam::{ACCOUNT}:role/events"),
        "RetryPolicy": {"MaximumRetryAttempts": 50, "MaximumEventAgeInSeconds": 3600}}])
    .to_string();
    ok(
        &server,
        &[
            "events",
            "put-targets",
            "--rule",
            "all",
            "--targets",
            &targets,
        ],
    );
    let put = ok(
        &server,
        &[
            "events",
            "put-events",
            "--entries",
            r#"[{"Source":"my.app","DetailType":"d","Detail":"{\"n\":1}"}]"#,
        ],
    );
    let id = put["Entries"][0]["EventId"].as_str().unwrap().to_owned();
    // Down for a while: attempts fail and are retried.
    std::thread::sleep(Duration::from_secs(3));
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    listener.set_nonblocking(false).unwrap();
    let (mut stream, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut headers = Vec::new();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap();
        }
        headers.push(line.trim().to_owned());
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).unwrap();
    stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .unwrap();
    assert!(headers[0].starts_with("POST /hook"), "{headers:?}");
    let lower: Vec<String> = headers.iter().map(|h| h.to_ascii_lowercase()).collect();
    assert!(
        lower.contains(&"x-api-key: s3cr3t".to_owned()),
        "{headers:?}"
    );
    assert!(
        lower.contains(&format!("x-citadel-event-id: {id}")),
        "{headers:?}"
    );
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["id"], id.as_str());
    assert_eq!(event["detail"]["n"], 1);
}

/// Reads one HTTP request from `stream` and answers it with `status`; returns the body.
fn answer(stream: std::net::TcpStream, status: &str) -> Value {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).unwrap();
    let mut stream = stream;
    stream
        .write_all(
            format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// A target that refuses an event (400: not retried) dead-letters it; `citadel events redrive`
/// (the management account's root only) sends it again.
#[test]
fn refused_events_are_dead_lettered_and_redriven() {
    let server = Server::dev().start();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let conn = ok(
        &server,
        &[
            "events",
            "create-connection",
            "--name",
            "c",
            "--authorization-type",
            "BASIC",
            "--auth-parameters",
            r#"{"BasicAuthParameters":{"Username":"u","Password":"p"}}"#,
        ],
    );
    let input = json!({"Name": "d", "ConnectionArn": conn["ConnectionArn"],
        "InvocationEndpoint": format!("http://127.0.0.1:{port}/"), "HttpMethod": "POST"})
    .to_string();
    let dest = ok(
        &server,
        &[
            "events",
            "create-api-destination",
            "--cli-input-json",
            &input,
        ],
    );
    ok(
        &server,
        &[
            "events",
            "put-rule",
            "--name",
            "r",
            "--event-pattern",
            r#"{"source":["s"]}"#,
        ],
    );
    let targets = json!([{"Id": "t", "Arn": dest["ApiDestinationArn"],
        "RoleArn": format!("arn:aws:iam::{ACCOUNT}:role/events")}])
    .to_string();
    ok(
        &server,
        &[
            "events",
            "put-targets",
            "--rule",
            "r",
            "--targets",
            &targets,
        ],
    );
    let put = ok(
        &server,
        &[
            "events",
            "put-events",
            "--entries",
            r#"[{"Source":"s","DetailType":"d","Detail":"{}"}]"#,
        ],
    );
    let id = put["Entries"][0]["EventId"].as_str().unwrap().to_owned();
    let (first, _) = listener.accept().unwrap();
    assert_eq!(answer(first, "400 Bad Request")["id"], id.as_str());

    // Only the management account's root may redrive (dev mode: the default account).
    let out = server.events(&["redrive"], (ACCOUNT, SECRET));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("AccessDeniedException"),
        "{}",
        stderr(&out)
    );
    let out = server.events(&["redrive", "--id", &id], ("000000000000", SECRET));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Redriven: 1"));
    let (second, _) = listener.accept().unwrap();
    assert_eq!(answer(second, "200 OK")["id"], id.as_str());
}

/// The issue's chain: deleting a KMS key (ScheduleKeyDeletion) is recorded in the audit trail,
/// `aws cloudtrail lookup-events` finds the record, and a rule on "AWS API Call via CloudTrail"
/// delivers the same record (same eventID) to a webhook. A read-only call (DescribeKey) does not
/// reach an `ENABLED` rule.
#[test]
fn a_kms_key_deletion_is_recorded_looked_up_and_delivered_to_a_webhook() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::dev().data_dir(&tmp.path().join("data")).start();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let conn = ok(
        &server,
        &[
            "events",
            "create-connection",
            "--name",
            "audit-hook",
            "--authorization-type",
            "API_KEY",
            "--auth-parameters",
            r#"{"ApiKeyAuthParameters":{"ApiKeyName":"x-api-key","ApiKeyValue":"k"}}"#,
        ],
    );
    let input = json!({"Name": "audit-receiver", "ConnectionArn": conn["ConnectionArn"],
        "InvocationEndpoint": format!("http://127.0.0.1:{port}/audit"), "HttpMethod": "POST"})
    .to_string();
    let dest = ok(
        &server,
        &[
            "events",
            "create-api-destination",
            "--cli-input-json",
            &input,
        ],
    );
    let pattern = json!({"source": ["aws.kms"], "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {"eventName": ["ScheduleKeyDeletion", "DescribeKey"]}})
    .to_string();
    ok(
        &server,
        &[
            "events",
            "put-rule",
            "--name",
            "kms-deletions",
            "--event-pattern",
            &pattern,
        ],
    );
    let targets = json!([{"Id": "hook", "Arn": dest["ApiDestinationArn"],
        "RoleArn": format!("arn:aws:iam::{ACCOUNT}:role/events")}])
    .to_string();
    ok(
        &server,
        &[
            "events",
            "put-targets",
            "--rule",
            "kms-deletions",
            "--targets",
            &targets,
        ],
    );

    let key = ok(&server, &["kms", "create-key"]);
    let key_id = key["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    ok(&server, &["kms", "describe-key", "--key-id", &key_id]);
    ok(
        &server,
        &[
            "kms",
            "schedule-key-deletion",
            "--key-id",
            &key_id,
            "--pending-window-in-days",
            "7",
        ],
    );

    let (stream, _) = listener.accept().unwrap();
    let event = answer(stream, "200 OK");
    assert_eq!(event["source"], "aws.kms");
    assert_eq!(event["detail-type"], "AWS API Call via CloudTrail");
    assert_eq!(event["account"], ACCOUNT);
    let detail = &event["detail"];
    assert_eq!(detail["eventName"], "ScheduleKeyDeletion", "{event}");
    assert_eq!(detail["eventSource"], "kms.amazonaws.com");
    assert_eq!(detail["readOnly"], false);
    assert_eq!(detail["requestParameters"]["keyId"], key_id.as_str());
    let event_id = detail["eventID"].as_str().unwrap().to_owned();

    let found = ok(
        &server,
        &[
            "cloudtrail",
            "lookup-events",
            "--lookup-attributes",
            "AttributeKey=EventName,AttributeValue=ScheduleKeyDeletion",
        ],
    );
    let events = found["Events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{found}");
    assert_eq!(events[0]["EventId"], event_id.as_str());
    let record: Value =
        serde_json::from_str(events[0]["CloudTrailEvent"].as_str().unwrap()).unwrap();
    assert_eq!(record["eventID"], event_id.as_str());

    // Nothing else arrives: the read-only DescribeKey does not reach an ENABLED rule.
    listener.set_nonblocking(true).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(listener.accept().is_err(), "a second delivery arrived");
}
