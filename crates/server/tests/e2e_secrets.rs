//! Secrets Manager against the real binary, driven by the real `aws` CLI and boto3
//! (`tests/clients/secrets_story.py`): the user story of the issue in dev mode, its bad inputs
//! with AWS's codes and messages, kms:Decrypt enforcement and resource policies in production
//! mode, and rotation that really runs through `command` rotators — AWS-template-shaped Python
//! (`tests/rotators/template_rotator.py`) calling back over HTTP — including a deliberately
//! failing rotator, one that answers garbage, one that times out, and a kill -9 in the middle
//! of a rotation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, json, stderr, stdout};
use serde_json::Value;

/// A 12-digit access key id selects the account in dev mode.
const ACCOUNT: &str = "111122223333";
const SECRET: &str = "dev-secret";

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn lambda(name: &str) -> String {
    format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}")
}

struct Cli<'a> {
    server: &'a Server,
    id: String,
    secret: String,
}

impl<'a> Cli<'a> {
    fn dev(server: &'a Server) -> Self {
        Cli {
            server,
            id: ACCOUNT.into(),
            secret: SECRET.into(),
        }
    }

    fn ok(&self, args: &[&str]) -> Value {
        let mut full = vec!["secretsmanager"];
        full.extend_from_slice(args);
        let out = self.server.aws(&self.id, &self.secret, &full);
        assert!(
            out.status.success(),
            "aws {full:?} failed: {}",
            stderr(&out)
        );
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            json(&out)
        }
    }

    /// Expects failure with `code`; returns the CLI's error text.
    fn fails(&self, args: &[&str], code: &str) -> String {
        let mut full = vec!["secretsmanager"];
        full.extend_from_slice(args);
        let out = self.server.aws(&self.id, &self.secret, &full);
        let err = stderr(&out);
        assert!(!out.status.success(), "aws {full:?} unexpectedly succeeded");
        assert!(
            err.contains(&format!("({code})")),
            "aws {full:?}: expected {code}, got: {err}"
        );
        err
    }

    fn value(&self, id: &str) -> String {
        self.ok(&["get-secret-value", "--secret-id", id])["SecretString"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// Writes a server configuration with the test rotators; returns its path.
fn rotator_config(dir: &Path) -> PathBuf {
    let script = tests_dir().join("rotators/template_rotator.py");
    let log = dir.join("steps.log");
    let rotator = |name: &str, extra: &str, timeout: u32| {
        format!(
            "[[secrets.rotators]]\nname = \"{name}\"\nkind = \"command\"\ncommand = [\"python3\", \"{}\"]\ntimeout_seconds = {timeout}\nenv = {{ ROTATOR_LOG = \"{}\"{extra} }}\n\n",
            script.display(),
            log.display()
        )
    };
    let marker = dir.join("slept");
    let mut text = String::new();
    text.push_str(&rotator("good", "", 60));
    text.push_str(&rotator(
        "failing",
        ", ROTATOR_FAIL_STEP = \"setSecret\"",
        60,
    ));
    text.push_str(&rotator(
        "garbage",
        ", ROTATOR_GARBAGE_STEP = \"setSecret\"",
        60,
    ));
    text.push_str(&rotator(
        "slow",
        &format!(
            ", ROTATOR_SLEEP_STEP = \"setSecret\", ROTATOR_SLEEP_MARKER = \"{}\", ROTATOR_SLEEP_SECONDS = \"30\"",
            dir.join("slow-marker").display()
        ),
        3,
    ));
    text.push_str(&rotator(
        "crashy",
        &format!(
            ", ROTATOR_SLEEP_STEP = \"setSecret\", ROTATOR_SLEEP_MARKER = \"{}\", ROTATOR_SLEEP_SECONDS = \"15\"",
            marker.display()
        ),
        120,
    ));
    let path = dir.join("citadel.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("timed out waiting for {what}");
}

fn stages_of(describe: &Value, version: &str) -> Vec<String> {
    describe["VersionIdsToStages"][version]
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn dev_mode_story_through_the_aws_cli() {
    let server = Server::dev().start();
    let cli = Cli::dev(&server);
    let created = cli.ok(&[
        "create-secret",
        "--name",
        "prod/db/password",
        "--secret-string",
        "hunter2",
        "--description",
        "database password",
        "--tags",
        "Key=team,Value=payments",
    ]);
    let arn = created["ARN"].as_str().unwrap().to_owned();
    let prefix = format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/db/password-");
    assert!(
        arn.starts_with(&prefix) && arn.len() == prefix.len() + 6,
        "{arn}"
    );
    let v1 = created["VersionId"].as_str().unwrap().to_owned();
    assert_eq!(cli.value("prod/db/password"), "hunter2");
    assert_eq!(cli.value(&arn), "hunter2");

    let put = cli.ok(&[
        "put-secret-value",
        "--secret-id",
        "prod/db/password",
        "--secret-string",
        "correct horse",
    ]);
    let v2 = put["VersionId"].as_str().unwrap().to_owned();
    assert_eq!(cli.value("prod/db/password"), "correct horse");
    let prev = cli.ok(&[
        "get-secret-value",
        "--secret-id",
        "prod/db/password",
        "--version-stage",
        "AWSPREVIOUS",
    ]);
    assert_eq!(prev["SecretString"], "hunter2");
    let by_id = cli.ok(&[
        "get-secret-value",
        "--secret-id",
        "prod/db/password",
        "--version-id",
        &v1,
    ]);
    assert_eq!(by_id["SecretString"], "hunter2");

    // Roll back by moving AWSCURRENT; AWSPREVIOUS follows.
    cli.ok(&[
        "update-secret-version-stage",
        "--secret-id",
        "prod/db/password",
        "--version-stage",
        "AWSCURRENT",
        "--move-to-version-id",
        &v1,
        "--remove-from-version-id",
        &v2,
    ]);
    let d = cli.ok(&["describe-secret", "--secret-id", "prod/db/password"]);
    assert_eq!(stages_of(&d, &v1), ["AWSCURRENT"]);
    assert_eq!(stages_of(&d, &v2), ["AWSPREVIOUS"]);
    assert_eq!(d["Description"], "database password");
    assert_eq!(d["Tags"][0]["Key"], "team");
    let versions = cli.ok(&["list-secret-version-ids", "--secret-id", "prod/db/password"]);
    assert_eq!(versions["Versions"].as_array().unwrap().len(), 2);

    cli.ok(&[
        "create-secret",
        "--name",
        "prod/api/key",
        "--secret-string",
        "k",
    ]);
    let listed = cli.ok(&["list-secrets", "--filters", "Key=tag-key,Values=team"]);
    assert_eq!(listed["SecretList"].as_array().unwrap().len(), 1);
    let listed = cli.ok(&["list-secrets", "--sort-order", "desc"]);
    let names: Vec<&str> = listed["SecretList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["prod/api/key", "prod/db/password"]);
    cli.ok(&[
        "tag-resource",
        "--secret-id",
        "prod/api/key",
        "--tags",
        "Key=env,Value=prod",
    ]);
    cli.ok(&[
        "untag-resource",
        "--secret-id",
        "prod/api/key",
        "--tag-keys",
        "env",
    ]);
    let batch = cli.ok(&[
        "batch-get-secret-value",
        "--secret-id-list",
        "prod/api/key",
        "prod/db/password",
    ]);
    assert_eq!(batch["SecretValues"].as_array().unwrap().len(), 2);
    let pw = cli.ok(&[
        "get-random-password",
        "--password-length",
        "40",
        "--exclude-punctuation",
        "--exclude-characters",
        "abc",
    ]);
    let pw = pw["RandomPassword"].as_str().unwrap();
    assert_eq!(pw.len(), 40);
    assert!(
        pw.chars()
            .all(|c| c.is_ascii_alphanumeric() && !"abc".contains(c))
    );

    // Bad input: AWS's codes and messages.
    let e = cli.fails(
        &[
            "create-secret",
            "--name",
            "bad name",
            "--secret-string",
            "x",
        ],
        "ValidationException",
    );
    assert!(e.contains("Invalid name. Must be a valid name containing alphanumeric characters"));
    let e = cli.fails(
        &[
            "create-secret",
            "--name",
            "both",
            "--secret-string",
            "x",
            "--secret-binary",
            "eA==",
        ],
        "InvalidParameterException",
    );
    assert!(e.contains(
        "You can't specify both a binary secret value and a string secret value in the same secret."
    ));
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.txt");
    std::fs::write(&big, "x".repeat(65 * 1024)).unwrap();
    cli.fails(
        &[
            "create-secret",
            "--name",
            "big",
            "--secret-string",
            &format!("file://{}", big.display()),
        ],
        "ValidationException",
    );
    let e = cli.fails(
        &[
            "create-secret",
            "--name",
            "prod/api/key",
            "--secret-string",
            "x",
        ],
        "ResourceExistsException",
    );
    assert!(e.contains("The operation failed because the secret prod/api/key already exists."));
    let e = cli.fails(
        &[
            "delete-secret",
            "--secret-id",
            "prod/api/key",
            "--recovery-window-in-days",
            "31",
        ],
        "InvalidParameterException",
    );
    assert!(
        e.contains("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
    );
    let e = cli.fails(
        &["describe-secret", "--secret-id", "nope"],
        "ResourceNotFoundException",
    );
    assert!(e.contains("Secrets Manager can't find the specified secret."));
    let e = cli.fails(
        &["rotate-secret", "--secret-id", "prod/api/key"],
        "InvalidRequestException",
    );
    assert!(e.contains("No Lambda rotation function ARN is associated with this secret."));
    cli.fails(
        &[
            "rotate-secret",
            "--secret-id",
            "prod/api/key",
            "--rotation-lambda-arn",
            &lambda("unknown"),
        ],
        "AccessDeniedException",
    );

    // Deletion with a window, restore, forced deletion.
    let del = cli.ok(&[
        "delete-secret",
        "--secret-id",
        "prod/api/key",
        "--recovery-window-in-days",
        "7",
    ]);
    assert!(del["DeletionDate"].is_number());
    let e = cli.fails(
        &["get-secret-value", "--secret-id", "prod/api/key"],
        "InvalidRequestException",
    );
    assert!(e.contains(
        "You can't perform this operation on the secret because it was marked for deletion."
    ));
    cli.fails(
        &[
            "create-secret",
            "--name",
            "prod/api/key",
            "--secret-string",
            "y",
        ],
        "InvalidRequestException",
    );
    cli.ok(&["restore-secret", "--secret-id", "prod/api/key"]);
    assert_eq!(cli.value("prod/api/key"), "k");
    cli.ok(&[
        "delete-secret",
        "--secret-id",
        "prod/api/key",
        "--force-delete-without-recovery",
    ]);
    cli.fails(
        &["describe-secret", "--secret-id", "prod/api/key"],
        "ResourceNotFoundException",
    );
    cli.ok(&[
        "create-secret",
        "--name",
        "prod/api/key",
        "--secret-string",
        "again",
    ]);
    assert_eq!(cli.value("prod/api/key"), "again");
}

#[test]
fn boto3_story() {
    let server = Server::dev().start();
    let mut cmd = Command::new("python3");
    cmd.arg(tests_dir().join("clients/secrets_story.py"))
        .env("CITADEL_URL", &server.url);
    isolate(&mut cmd, ACCOUNT, SECRET);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success() && stdout(&out).contains("OK"),
        "secrets_story.py failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
}

fn isolate(cmd: &mut Command, id: &str, secret: &str) {
    for var in [
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_CA_BUNDLE",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_ACCESS_KEY_ID", id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent/citadel-test-aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/citadel-test-aws-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1");
}

const ROOT_ID: &str = "AKIACITADELTESTROOT1";
const ROOT_SECRET: &str = "cItAdElTeStSeCrEt/0123456789abcdefGHIJKL";

#[test]
fn production_kms_decrypt_and_resource_policies_are_enforced() {
    let server = Server::production()
        .arg("--seal")
        .arg("file")
        .arg("--insecure-http")
        .env("CITADEL_ROOT_ACCESS_KEY_ID", ROOT_ID)
        .env("CITADEL_ROOT_SECRET_ACCESS_KEY", ROOT_SECRET)
        .start();
    let root_ok = |args: &[&str]| -> Value {
        let out = server.aws(ROOT_ID, ROOT_SECRET, args);
        assert!(out.status.success(), "aws {args:?}: {}", stderr(&out));
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            json(&out)
        }
    };
    let key = root_ok(&["kms", "create-key"])["KeyMetadata"]["Arn"]
        .as_str()
        .unwrap()
        .to_owned();
    root_ok(&[
        "secretsmanager",
        "create-secret",
        "--name",
        "app/db",
        "--secret-string",
        "pw",
        "--kms-key-id",
        &key,
    ]);
    root_ok(&["iam", "create-user", "--user-name", "app"]);
    let k = root_ok(&["iam", "create-access-key", "--user-name", "app"]);
    let app = Cli {
        server: &server,
        id: k["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned(),
        secret: k["AccessKey"]["SecretAccessKey"]
            .as_str()
            .unwrap()
            .to_owned(),
    };
    let sm_only = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
    root_ok(&[
        "iam",
        "put-user-policy",
        "--user-name",
        "app",
        "--policy-name",
        "p",
        "--policy-document",
        sm_only,
    ]);
    let e = app.fails(
        &["get-secret-value", "--secret-id", "app/db"],
        "AccessDeniedException",
    );
    assert!(e.contains("Access to KMS is not allowed"), "{e}");
    let with_kms = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"},{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"secretsmanager.us-east-1.amazonaws.com"}}}]}"#;
    root_ok(&[
        "iam",
        "put-user-policy",
        "--user-name",
        "app",
        "--policy-name",
        "p",
        "--policy-document",
        with_kms,
    ]);
    assert_eq!(app.value("app/db"), "pw");
    // Revoking kms:Decrypt again denies at once, with secretsmanager:GetSecretValue allowed.
    root_ok(&[
        "iam",
        "put-user-policy",
        "--user-name",
        "app",
        "--policy-name",
        "p",
        "--policy-document",
        sm_only,
    ]);
    app.fails(
        &["get-secret-value", "--secret-id", "app/db"],
        "AccessDeniedException",
    );

    // A resource policy grants DescribeSecret to the user; a public one is blocked.
    app.fails(
        &["describe-secret", "--secret-id", "app/db"],
        "AccessDeniedException",
    );
    let grant = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/app"},"Action":"secretsmanager:DescribeSecret","Resource":"*"}]}"#;
    root_ok(&[
        "secretsmanager",
        "put-resource-policy",
        "--secret-id",
        "app/db",
        "--resource-policy",
        grant,
        "--block-public-policy",
    ]);
    app.ok(&["describe-secret", "--secret-id", "app/db"]);
    let public = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
    let out = server.aws(
        ROOT_ID,
        ROOT_SECRET,
        &[
            "secretsmanager",
            "put-resource-policy",
            "--secret-id",
            "app/db",
            "--resource-policy",
            public,
            "--block-public-policy",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("(PublicPolicyException)"),
        "{}",
        stderr(&out)
    );
}

/// Polls until the rotation that created `version` has finished successfully.
fn wait_rotated(cli: &Cli<'_>, id: &str, version: &str) {
    wait_for("the rotation to finish", Duration::from_secs(90), || {
        let d = cli.ok(&["describe-secret", "--secret-id", id]);
        stages_of(&d, version) == ["AWSCURRENT"]
    });
}

#[test]
fn command_rotators_run_aws_shaped_rotation_functions() {
    let dir = tempfile::tempdir().unwrap();
    let config = rotator_config(dir.path());
    let server = Server::dev()
        .arg("--config")
        .arg(config.to_str().unwrap())
        .start();
    let cli = Cli::dev(&server);
    let created = cli.ok(&[
        "create-secret",
        "--name",
        "db",
        "--secret-string",
        "initial",
    ]);
    let v1 = created["VersionId"].as_str().unwrap().to_owned();
    let out = cli.ok(&[
        "rotate-secret",
        "--secret-id",
        "db",
        "--rotation-lambda-arn",
        &lambda("good"),
        "--rotation-rules",
        "{\"ScheduleExpression\": \"rate(10 days)\", \"Duration\": \"3h\"}",
    ]);
    let v2 = out["VersionId"].as_str().unwrap().to_owned();
    wait_rotated(&cli, "db", &v2);
    let d = cli.ok(&["describe-secret", "--secret-id", "db"]);
    assert_eq!(stages_of(&d, &v1), ["AWSPREVIOUS"]);
    assert_eq!(d["RotationEnabled"], true);
    assert!(d["LastRotatedDate"].is_number());
    assert!(d["NextRotationDate"].is_number());
    let rotated = cli.value("db");
    assert_ne!(rotated, "initial");
    assert_eq!(rotated.len(), 32);
    let log = std::fs::read_to_string(dir.path().join("steps.log")).unwrap();
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        ["createSecret", "setSecret", "testSecret", "finishSecret"]
    );
    // Too frequent a schedule.
    cli.fails(
        &[
            "rotate-secret",
            "--secret-id",
            "db",
            "--rotation-rules",
            "{\"ScheduleExpression\": \"rate(2 hours)\"}",
        ],
        "InvalidParameterException",
    );

    // A failing rotator: AWSPENDING left, AWSCURRENT intact, the failure recorded.
    for (name, why) in [
        ("failing", "status 1"),
        ("garbage", "not JSON"),
        ("slow", "timed out"),
    ] {
        let secret = format!("fail-{name}");
        cli.ok(&[
            "create-secret",
            "--name",
            &secret,
            "--secret-string",
            "keep-me",
        ]);
        let out = cli.ok(&[
            "rotate-secret",
            "--secret-id",
            &secret,
            "--rotation-lambda-arn",
            &lambda(name),
        ]);
        let pending = out["VersionId"].as_str().unwrap().to_owned();
        let raw_failure = || -> Option<Value> {
            let out = server.aws(
                ACCOUNT,
                SECRET,
                &[
                    "secretsmanager",
                    "describe-secret",
                    "--secret-id",
                    &secret,
                    "--debug",
                ],
            );
            let text = stderr(&out);
            let i = text.find("CitadelLastRotationFailure")?;
            Some(Value::String(text[i..text.len().min(i + 400)].to_owned()))
        };
        wait_for(
            "the failure to be recorded",
            Duration::from_secs(60),
            || raw_failure().is_some(),
        );
        let failure = raw_failure().unwrap();
        assert!(failure.as_str().unwrap().contains(why), "{name}: {failure}");
        assert_eq!(cli.value(&secret), "keep-me");
        let d = cli.ok(&["describe-secret", "--secret-id", &secret]);
        assert_eq!(stages_of(&d, &pending), ["AWSPENDING"]);
        // Another rotation request reattempts the pending version.
        let e = server.aws(
            ACCOUNT,
            SECRET,
            &["secretsmanager", "rotate-secret", "--secret-id", &secret],
        );
        assert!(e.status.success(), "{}", stderr(&e));
        assert_eq!(json(&e)["VersionId"], pending);
    }
}

#[test]
fn kill_9_during_rotation_leaves_the_secret_readable_and_the_rotation_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let config = rotator_config(dir.path());
    let data = dir.path().join("data");
    let server = Server::dev()
        .arg("--config")
        .arg(config.to_str().unwrap())
        .data_dir(&data)
        .start();
    let cli = Cli::dev(&server);
    cli.ok(&["create-secret", "--name", "db", "--secret-string", "before"]);
    let out = cli.ok(&[
        "rotate-secret",
        "--secret-id",
        "db",
        "--rotation-lambda-arn",
        &lambda("crashy"),
    ]);
    let pending = out["VersionId"].as_str().unwrap().to_owned();
    // The rotator is inside setSecret (after createSecret stored the pending value).
    let marker = dir.path().join("slept");
    wait_for(
        "the rotator to reach setSecret",
        Duration::from_secs(60),
        || marker.exists(),
    );
    let (_, _keep) = server.kill9();

    let server = Server::dev()
        .arg("--config")
        .arg(config.to_str().unwrap())
        .data_dir(&data)
        .start();
    let cli = Cli::dev(&server);
    // Readable at once, with the value from before the rotation.
    assert_eq!(cli.value("db"), "before");
    // The scheduler's first tick resumes the rotation where it stopped.
    wait_rotated(&cli, "db", &pending);
    let rotated = cli.value("db");
    assert_ne!(rotated, "before");
    let previous = cli.ok(&[
        "get-secret-value",
        "--secret-id",
        "db",
        "--version-stage",
        "AWSPREVIOUS",
    ]);
    assert_eq!(previous["SecretString"], "before");
    let log = std::fs::read_to_string(dir.path().join("steps.log")).unwrap();
    let steps: Vec<&str> = log.lines().collect();
    // createSecret ran once; setSecret started before the crash and ran again after it.
    assert_eq!(
        steps.iter().filter(|s| **s == "createSecret").count(),
        1,
        "{steps:?}"
    );
    assert_eq!(
        steps.iter().filter(|s| **s == "setSecret").count(),
        2,
        "{steps:?}"
    );
    assert!(server.log().contains("resuming an interrupted rotation"));
}
