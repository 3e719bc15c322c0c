//! Parameter Store sharing, public parameters and policy events against the real binary with
//! the `aws` CLI, in dev mode (a 12-digit access key id selects the account): an Advanced
//! parameter shared by PutResourcePolicy is readable by ARN from the other account and listed
//! by `describe-parameters --shared`; the operator's `/aws/service/` file is readable by every
//! account and read-only; writes reach an EventBridge file target as "Parameter Store Change"
//! events and notification policies are listed with their status. (Time-based notifications
//! are covered by the unit tests with the injectable clock.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, json, stderr};
use serde_json::Value;

const OWNER: &str = "111122223333";
const OTHER: &str = "444455556666";
const SECRET: &str = "dev-secret";

fn ok_as(server: &Server, id: &str, args: &[&str]) -> Value {
    let out = server.aws(id, SECRET, args);
    assert!(
        out.status.success(),
        "aws {args:?} failed: {}",
        stderr(&out)
    );
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        json(&out)
    }
}

fn fails_as(server: &Server, id: &str, args: &[&str], code: &str) -> String {
    let out = server.aws(id, SECRET, args);
    let err = stderr(&out);
    assert!(!out.status.success(), "aws {args:?} should have failed");
    assert!(
        err.contains(&format!("({code})")),
        "aws {args:?}: expected {code}, got: {err}"
    );
    err
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..100 {
        if check() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn resource_policies_share_an_advanced_parameter_across_accounts() {
    let server = Server::dev().start();
    let arn = format!("arn:aws:ssm:us-east-1:{OWNER}:parameter/team/endpoint");
    ok_as(
        &server,
        OWNER,
        &[
            "ssm",
            "put-parameter",
            "--name",
            "/team/endpoint",
            "--value",
            "db.internal:5432",
            "--type",
            "String",
            "--tier",
            "Advanced",
        ],
    );
    ok_as(
        &server,
        OWNER,
        &[
            "ssm",
            "put-parameter",
            "--name",
            "/team/std",
            "--value",
            "x",
            "--type",
            "String",
        ],
    );
    fails_as(
        &server,
        OTHER,
        &["ssm", "get-parameter", "--name", &arn],
        "AccessDeniedException",
    );
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": OTHER}, "Action": ["ssm:GetParameter", "ssm:GetParameters"],
        "Resource": arn}]})
    .to_string();
    let std_arn = format!("arn:aws:ssm:us-east-1:{OWNER}:parameter/team/std");
    fails_as(
        &server,
        OWNER,
        &[
            "ssm",
            "put-resource-policy",
            "--resource-arn",
            &std_arn,
            "--policy",
            &policy,
        ],
        "ResourcePolicyInvalidParameterException",
    );
    let put = ok_as(
        &server,
        OWNER,
        &[
            "ssm",
            "put-resource-policy",
            "--resource-arn",
            &arn,
            "--policy",
            &policy,
        ],
    );
    let id = put["PolicyId"].as_str().unwrap().to_owned();
    let hash = put["PolicyHash"].as_str().unwrap().to_owned();

    let got = ok_as(&server, OTHER, &["ssm", "get-parameter", "--name", &arn]);
    assert_eq!(got["Parameter"]["Value"], "db.internal:5432");
    let got = ok_as(&server, OTHER, &["ssm", "get-parameters", "--names", &arn]);
    assert_eq!(got["Parameters"][0]["ARN"], arn.as_str());
    // The other account cannot write or manage it.
    fails_as(
        &server,
        OTHER,
        &["ssm", "get-resource-policies", "--resource-arn", &arn],
        "AccessDeniedException",
    );
    let shared = ok_as(&server, OTHER, &["ssm", "describe-parameters", "--shared"]);
    assert_eq!(shared["Parameters"][0]["Name"], "/team/endpoint");
    let listed = ok_as(
        &server,
        OWNER,
        &["ssm", "get-resource-policies", "--resource-arn", &arn],
    );
    assert_eq!(listed["Policies"][0]["PolicyId"], id.as_str());

    fails_as(
        &server,
        OWNER,
        &[
            "ssm",
            "delete-resource-policy",
            "--resource-arn",
            &arn,
            "--policy-id",
            &id,
            "--policy-hash",
            "stale",
        ],
        "ResourcePolicyConflictException",
    );
    ok_as(
        &server,
        OWNER,
        &[
            "ssm",
            "delete-resource-policy",
            "--resource-arn",
            &arn,
            "--policy-id",
            &id,
            "--policy-hash",
            &hash,
        ],
    );
    fails_as(
        &server,
        OTHER,
        &["ssm", "get-parameter", "--name", &arn],
        "AccessDeniedException",
    );
    let shared = ok_as(&server, OTHER, &["ssm", "describe-parameters", "--shared"]);
    assert_eq!(shared["Parameters"], serde_json::json!([]));
}

#[test]
fn public_parameters_from_the_operator_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("public.json");
    std::fs::write(
        &file,
        r#"{"/aws/service/global-infrastructure/regions/us-east-1": "us-east-1",
            "/aws/service/global-infrastructure/regions/eu-west-1": "eu-west-1",
            "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64":
                {"Value": "ami-0123456789abcdef0", "DataType": "aws:ec2:image"}}"#,
    )
    .unwrap();
    let config = dir.path().join("citadel.toml");
    std::fs::write(
        &config,
        format!("[ssm]\npublic_parameters = {:?}\n", file.to_str().unwrap()),
    )
    .unwrap();
    let server = Server::dev()
        .arg("--config")
        .arg(config.to_str().unwrap())
        .start();
    for account in [OWNER, OTHER] {
        let got = ok_as(
            &server,
            account,
            &[
                "ssm",
                "get-parameter",
                "--name",
                "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
            ],
        );
        assert_eq!(got["Parameter"]["Value"], "ami-0123456789abcdef0");
        assert_eq!(got["Parameter"]["DataType"], "aws:ec2:image");
        // The CLI pages through every page itself.
        let regions = ok_as(
            &server,
            account,
            &[
                "ssm",
                "get-parameters-by-path",
                "--path",
                "/aws/service/global-infrastructure/regions",
                "--page-size",
                "1",
            ],
        );
        let names: Vec<&str> = regions["Parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["Value"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["eu-west-1", "us-east-1"]);
    }
    let err = fails_as(
        &server,
        OWNER,
        &[
            "ssm",
            "put-parameter",
            "--name",
            "/aws/service/global-infrastructure/regions/x",
            "--value",
            "x",
            "--type",
            "String",
        ],
        "AccessDeniedException",
    );
    assert!(err.contains("reserved parameter name"), "{err}");
}

#[test]
fn writes_reach_the_event_bus_and_policies_show_their_status() {
    let server = Server::dev().start();
    let pattern = r#"{"source":["aws.ssm"]}"#;
    ok_as(
        &server,
        OWNER,
        &[
            "events",
            "put-rule",
            "--name",
            "ssm",
            "--event-pattern",
            pattern,
        ],
    );
    ok_as(
        &server,
        OWNER,
        &[
            "events",
            "put-targets",
            "--rule",
            "ssm",
            "--targets",
            "Id=f,Arn=arn:citadel:events:::file/ssm",
        ],
    );
    let policies = r#"[{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"2099-01-01T00:00:00.000Z"}},
        {"Type":"ExpirationNotification","Version":"1.0","Attributes":{"Before":"15","Unit":"Days"}},
        {"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"20","Unit":"Hours"}}]"#;
    ok_as(
        &server,
        OWNER,
        &[
            "ssm",
            "put-parameter",
            "--name",
            "/ev/pw",
            "--value",
            "v1",
            "--type",
            "String",
            "--tier",
            "Advanced",
            "--policies",
            policies,
        ],
    );
    let described = ok_as(
        &server,
        OWNER,
        &[
            "ssm",
            "describe-parameters",
            "--parameter-filters",
            "Key=Name,Values=/ev/pw",
        ],
    );
    let listed: Vec<(String, String)> = described["Parameters"][0]["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["PolicyType"].as_str().unwrap().to_owned(),
                p["PolicyStatus"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|(_, s)| s == "Pending"), "{listed:?}");

    let file = server.data_dir.join("events").join("ssm.jsonl");
    wait_for("the Parameter Store Change event", || file.exists());
    let lines: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["detail-type"], "Parameter Store Change");
    assert_eq!(lines[0]["detail"]["name"], "/ev/pw");
    assert_eq!(lines[0]["detail"]["operation"], "Create");
    // A Standard parameter cannot carry policies.
    fails_as(
        &server,
        OWNER,
        &[
            "ssm",
            "put-parameter",
            "--name",
            "/ev/std",
            "--value",
            "v",
            "--type",
            "String",
            "--tier",
            "Standard",
            "--policies",
            policies,
        ],
        "ValidationException",
    );
}
