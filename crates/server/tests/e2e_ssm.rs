//! Parameter Store against the real binary, driven by the real `aws` CLI and boto3
//! (`tests/clients/ssm_story.py`): the issue's hierarchy scenario in production mode (a "dev"
//! principal reads `/…/dev` and is denied `/…/prod`; reading a plaintext needs `kms:Decrypt`),
//! SecureStrings under the default and a customer key, versions/labels/history, GetParameters
//! with invalid names, DescribeParameters filters and pagination, deletes, tags, and the
//! issue's bad inputs with AWS's codes and messages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, b64decode, json, stderr};
use serde_json::{Value, json};

/// A 12-digit access key id selects the account in dev mode.
const ACCOUNT: &str = "111122223333";
const SECRET: &str = "dev-secret";
const REGION: &str = "us-east-1";

const ROOT_ID: &str = "AKIACITADELTESTROOT1";
const ROOT_SECRET: &str = "cItAdElTeStSeCrEt/0123456789abcdefGHIJKL";

fn ok(server: &Server, args: &[&str]) -> Value {
    server.aws_ok(ACCOUNT, SECRET, args)
}

fn fails(server: &Server, args: &[&str], code: &str) -> String {
    server.aws_fails(ACCOUNT, SECRET, args, code)
}

fn names(v: &Value) -> Vec<String> {
    v["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["Name"].as_str().unwrap().to_owned())
        .collect()
}

fn production() -> common::ServerBuilder {
    Server::production()
        .arg("--seal")
        .arg("file")
        .arg("--insecure-http")
        .env("CITADEL_ROOT_ACCESS_KEY_ID", ROOT_ID)
        .env("CITADEL_ROOT_SECRET_ACCESS_KEY", ROOT_SECRET)
}

/// Creates IAM user `name` with one inline policy; returns its access key.
fn user(server: &Server, name: &str, policy: &Value) -> (String, String) {
    let root = |args: &[&str]| server.aws_ok(ROOT_ID, ROOT_SECRET, args);
    root(&["iam", "create-user", "--user-name", name]);
    root(&[
        "iam",
        "put-user-policy",
        "--user-name",
        name,
        "--policy-name",
        "p",
        "--policy-document",
        &policy.to_string(),
    ]);
    let key = root(&["iam", "create-access-key", "--user-name", name]);
    (
        key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned(),
        key["AccessKey"]["SecretAccessKey"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

#[test]
fn the_seed_hierarchy_dev_reads_dev_and_is_denied_prod() {
    let server = production().start();
    let root = |args: &[&str]| server.aws_ok(ROOT_ID, ROOT_SECRET, args);
    let account = root(&["sts", "get-caller-identity"])["Account"]
        .as_str()
        .unwrap()
        .to_owned();
    for (env, url, pw) in [
        ("dev", "pg://dev-db", "dev-pw"),
        ("prod", "pg://prod-db", "prod-pw"),
    ] {
        root(&[
            "ssm",
            "put-parameter",
            "--name",
            &format!("/my-department/my-app/{env}/db-url"),
            "--value",
            url,
            "--type",
            "String",
        ]);
        root(&[
            "ssm",
            "put-parameter",
            "--name",
            &format!("/my-department/my-app/{env}/db-password"),
            "--value",
            pw,
            "--type",
            "SecureString",
        ]);
    }
    let dev_arn = format!("arn:aws:ssm:{REGION}:{account}:parameter/my-department/my-app/dev");
    let (dev_id, dev_secret) = user(
        &server,
        "dev",
        &json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["ssm:GetParametersByPath", "ssm:GetParameter*"],
             "Resource": [dev_arn.clone(), format!("{dev_arn}/*")]},
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}
        ]}),
    );
    let by_path = |path: &str| {
        vec![
            "ssm".to_owned(),
            "get-parameters-by-path".to_owned(),
            "--path".to_owned(),
            path.to_owned(),
            "--recursive".to_owned(),
            "--with-decryption".to_owned(),
        ]
    };
    let args = by_path("/my-department/my-app/dev");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let v = server.aws_ok(&dev_id, &dev_secret, &args);
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
                "dev-pw".to_owned()
            ),
            (
                "/my-department/my-app/dev/db-url".to_owned(),
                "pg://dev-db".to_owned()
            ),
        ]
    );
    let args = by_path("/my-department/my-app/prod");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = server.aws_fails(&dev_id, &dev_secret, &args, "AccessDeniedException");
    assert!(
        err.contains(&format!(
            "User: arn:aws:iam::{account}:user/dev is not authorized to perform: ssm:GetParametersByPath on resource: arn:aws:ssm:{REGION}:{account}:parameter/my-department/my-app/prod"
        )),
        "{err}"
    );
    server.aws_fails(
        &dev_id,
        &dev_secret,
        &[
            "ssm",
            "get-parameter",
            "--name",
            "/my-department/my-app/prod/db-password",
            "--with-decryption",
        ],
        "AccessDeniedException",
    );
    let one = server.aws_ok(
        &dev_id,
        &dev_secret,
        &[
            "ssm",
            "get-parameter",
            "--name",
            "/my-department/my-app/dev/db-password",
            "--with-decryption",
        ],
    );
    assert_eq!(one["Parameter"]["Value"], "dev-pw");

    // A user with ssm:GetParameter but no kms:Decrypt on a customer key sees only the
    // ciphertext.
    let key = root(&["kms", "create-key"]);
    let key_id = key["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    root(&[
        "ssm",
        "put-parameter",
        "--name",
        "/my-department/my-app/prod/api-token",
        "--value",
        "prod-token",
        "--type",
        "SecureString",
        "--key-id",
        &key_id,
    ]);
    let (ro_id, ro_secret) = user(
        &server,
        "no-kms",
        &json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"}
        ]}),
    );
    let hidden = server.aws_ok(
        &ro_id,
        &ro_secret,
        &[
            "ssm",
            "get-parameter",
            "--name",
            "/my-department/my-app/prod/api-token",
        ],
    );
    assert_eq!(hidden["Parameter"]["Type"], "SecureString");
    assert_ne!(hidden["Parameter"]["Value"], "prod-token");
    let err = server.aws_fails(
        &ro_id,
        &ro_secret,
        &[
            "ssm",
            "get-parameter",
            "--name",
            "/my-department/my-app/prod/api-token",
            "--with-decryption",
        ],
        "AccessDeniedException",
    );
    assert!(err.contains("kms:Decrypt"), "{err}");
    // The values never reach the server log.
    let log = server.log();
    assert!(!log.contains("prod-pw") && !log.contains("dev-pw") && !log.contains("prod-token"));
}

#[test]
fn secure_strings_versions_labels_describe_delete_and_tags() {
    let server = Server::dev().start();
    // SecureString under the default key: ciphertext unless decrypted, KeyId alias/aws/ssm.
    let v = ok(
        &server,
        &[
            "ssm",
            "put-parameter",
            "--name",
            "/app/db-password",
            "--value",
            "hunter2",
            "--type",
            "SecureString",
        ],
    );
    assert_eq!(v, json!({"Version": 1, "Tier": "Standard"}));
    let hidden = ok(
        &server,
        &["ssm", "get-parameter", "--name", "/app/db-password"],
    );
    let blob = hidden["Parameter"]["Value"].as_str().unwrap().to_owned();
    assert_ne!(blob, "hunter2");
    let shown = ok(
        &server,
        &[
            "ssm",
            "get-parameter",
            "--name",
            "/app/db-password",
            "--with-decryption",
        ],
    );
    assert_eq!(shown["Parameter"]["Value"], "hunter2");
    assert_eq!(
        shown["Parameter"]["ARN"],
        format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/db-password")
    );
    // A customer key through --key-id.
    let key = ok(&server, &["kms", "create-key"]);
    let key_id = key["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    ok(
        &server,
        &[
            "kms",
            "create-alias",
            "--alias-name",
            "alias/app",
            "--target-key-id",
            &key_id,
        ],
    );
    ok(
        &server,
        &[
            "ssm",
            "put-parameter",
            "--name",
            "/app/api-key",
            "--value",
            "k3y",
            "--type",
            "SecureString",
            "--key-id",
            "alias/app",
        ],
    );
    let d = ok(
        &server,
        &[
            "ssm",
            "describe-parameters",
            "--parameter-filters",
            "Key=Type,Values=SecureString",
        ],
    );
    let keys: Vec<(String, String)> = d["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["Name"].as_str().unwrap().to_owned(),
                p["KeyId"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            ("/app/api-key".to_owned(), "alias/app".to_owned()),
            ("/app/db-password".to_owned(), "alias/aws/ssm".to_owned()),
        ]
    );
    let v = ok(
        &server,
        &[
            "ssm",
            "get-parameter",
            "--name",
            "/app/api-key",
            "--with-decryption",
        ],
    );
    assert_eq!(v["Parameter"]["Value"], "k3y");
    // Without decryption: KMS's ciphertext, bound to the parameter ARN.
    let blob =
        ok(&server, &["ssm", "get-parameter", "--name", "/app/api-key"])["Parameter"]["Value"]
            .as_str()
            .unwrap()
            .to_owned();
    let arn = format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/api-key");
    let blob_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(blob_file.path(), b64decode(&blob)).unwrap();
    let dec = ok(
        &server,
        &[
            "kms",
            "decrypt",
            "--ciphertext-blob",
            &format!("fileb://{}", blob_file.path().display()),
            "--encryption-context",
            &format!("PARAMETER_ARN={arn}"),
        ],
    );
    assert_eq!(b64decode(dec["Plaintext"].as_str().unwrap()), b"k3y");

    // Versions, labels, selectors, history.
    for value in ["one", "two", "three"] {
        ok(
            &server,
            &[
                "ssm",
                "put-parameter",
                "--name",
                "/app/mode",
                "--value",
                value,
                "--type",
                "String",
                "--overwrite",
            ],
        );
    }
    let l = ok(
        &server,
        &[
            "ssm",
            "label-parameter-version",
            "--name",
            "/app/mode",
            "--parameter-version",
            "2",
            "--labels",
            "stable",
            "9bad",
        ],
    );
    assert_eq!(l, json!({"InvalidLabels": ["9bad"], "ParameterVersion": 2}));
    let by_label = ok(
        &server,
        &["ssm", "get-parameter", "--name", "/app/mode:stable"],
    );
    assert_eq!(by_label["Parameter"]["Value"], "two");
    assert_eq!(by_label["Parameter"]["Selector"], ":stable");
    let by_version = ok(&server, &["ssm", "get-parameter", "--name", "/app/mode:1"]);
    assert_eq!(by_version["Parameter"]["Value"], "one");
    let err = fails(
        &server,
        &["ssm", "get-parameter", "--name", "/app/mode:101"],
        "ParameterVersionNotFound",
    );
    assert!(
        err.contains(
            "Systems Manager could not find version 101 of /app/mode. Verify the version and try again."
        ),
        "{err}"
    );
    let h = ok(
        &server,
        &[
            "ssm",
            "get-parameter-history",
            "--name",
            "/app/mode",
            "--page-size",
            "1",
        ],
    );
    let hist: Vec<(i64, String)> = h["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["Version"].as_i64().unwrap(),
                p["Value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        hist,
        vec![(1, "one".into()), (2, "two".into()), (3, "three".into())]
    );
    assert_eq!(h["Parameters"][1]["Labels"], json!(["stable"]));
    let u = ok(
        &server,
        &[
            "ssm",
            "unlabel-parameter-version",
            "--name",
            "/app/mode",
            "--parameter-version",
            "2",
            "--labels",
            "stable",
        ],
    );
    assert_eq!(u, json!({"RemovedLabels": ["stable"], "InvalidLabels": []}));

    // GetParameters with valid and invalid names.
    let g = ok(
        &server,
        &[
            "ssm",
            "get-parameters",
            "--names",
            "/app/mode",
            "/app/missing",
            "/app/mode:7",
        ],
    );
    assert_eq!(names(&g), vec!["/app/mode"]);
    assert_eq!(
        g["InvalidParameters"],
        json!(["/app/missing", "/app/mode:7"])
    );

    // DescribeParameters: filters and pagination (the CLI pages with MaxResults=2).
    for i in 0..7 {
        ok(
            &server,
            &[
                "ssm",
                "put-parameter",
                "--name",
                &format!("/app/list/p{i}"),
                "--value",
                "v",
                "--type",
                "String",
                "--tags",
                &format!("Key=idx,Value={}", i % 2),
            ],
        );
    }
    let all = ok(
        &server,
        &[
            "ssm",
            "describe-parameters",
            "--parameter-filters",
            "Key=Path,Option=Recursive,Values=/app/list",
            "--page-size",
            "2",
        ],
    );
    assert_eq!(names(&all).len(), 7);
    let odd = ok(
        &server,
        &[
            "ssm",
            "describe-parameters",
            "--parameter-filters",
            "Key=tag:idx,Values=1",
        ],
    );
    assert_eq!(
        names(&odd),
        vec!["/app/list/p1", "/app/list/p3", "/app/list/p5"]
    );
    let begins = ok(
        &server,
        &[
            "ssm",
            "describe-parameters",
            "--parameter-filters",
            "Key=Name,Option=BeginsWith,Values=/app/list/p6",
        ],
    );
    assert_eq!(names(&begins), vec!["/app/list/p6"]);
    fails(
        &server,
        &[
            "ssm",
            "describe-parameters",
            "--parameter-filters",
            "Key=Label,Values=x",
        ],
        "InvalidFilterKey",
    );
    let one_level = ok(
        &server,
        &[
            "ssm",
            "get-parameters-by-path",
            "--path",
            "/app",
            "--page-size",
            "2",
        ],
    );
    assert_eq!(
        names(&one_level),
        vec!["/app/api-key", "/app/db-password", "/app/mode"]
    );

    // Tags.
    ok(
        &server,
        &[
            "ssm",
            "add-tags-to-resource",
            "--resource-type",
            "Parameter",
            "--resource-id",
            "/app/mode",
            "--tags",
            "Key=team,Value=core",
        ],
    );
    let t = ok(
        &server,
        &[
            "ssm",
            "list-tags-for-resource",
            "--resource-type",
            "Parameter",
            "--resource-id",
            "/app/mode",
        ],
    );
    assert_eq!(t, json!({"TagList": [{"Key": "team", "Value": "core"}]}));
    ok(
        &server,
        &[
            "ssm",
            "remove-tags-from-resource",
            "--resource-type",
            "Parameter",
            "--resource-id",
            "/app/mode",
            "--tag-keys",
            "team",
        ],
    );

    // Deletes.
    let d = ok(
        &server,
        &[
            "ssm",
            "delete-parameters",
            "--names",
            "/app/list/p0",
            "/app/list/nope",
        ],
    );
    assert_eq!(
        d,
        json!({"DeletedParameters": ["/app/list/p0"], "InvalidParameters": ["/app/list/nope"]})
    );
    ok(
        &server,
        &["ssm", "delete-parameter", "--name", "/app/list/p1"],
    );
    fails(
        &server,
        &["ssm", "delete-parameter", "--name", "/app/list/p1"],
        "ParameterNotFound",
    );
    fails(
        &server,
        &["ssm", "get-parameter", "--name", "/app/list/p1"],
        "ParameterNotFound",
    );
    assert!(!server.log().contains("hunter2"));
}

#[test]
fn the_issue_bad_inputs_get_aws_errors_and_write_nothing() {
    let server = Server::dev().start();
    let put = |name: &str, value: &str, extra: &[&str]| {
        let mut args = vec![
            "ssm",
            "put-parameter",
            "--name",
            name,
            "--value",
            value,
            "--type",
            "String",
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>, code: &str| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        fails(&server, &a, code)
    };
    let big = "x".repeat(4097);
    let err = run(put("/bad/big", &big, &[]), "ValidationException");
    assert!(
        err.contains(
            "Standard tier parameters support a maximum parameter value of 4096 characters."
        ),
        "{err}"
    );
    let deep: String = (1..=16).map(|i| format!("/l{i}")).collect();
    run(put(&deep, "x", &[]), "HierarchyLevelLimitExceededException");
    let err = run(put("awsfoo", "x", &[]), "ValidationException");
    assert!(
        err.contains(
            "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive)."
        ),
        "{err}"
    );
    let err = run(
        put("/bad/pattern", "abc1", &["--allowed-pattern", "^[a-z]+$"]),
        "ParameterPatternMismatchException",
    );
    assert!(
        err.contains("Parameter value, cannot be validated against allowedPattern: ^[a-z]+$"),
        "{err}"
    );
    run(
        put(
            "/bad/policy",
            "x",
            &["--tier", "Advanced", "--policies", "[{not json"],
        ),
        "ValidationException",
    );
    run(
        put(
            "/bad/policy",
            "x",
            &[
                "--tier",
                "Advanced",
                "--policies",
                r#"[{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"2001-01-01T00:00:00.000Z"}}]"#,
            ],
        ),
        "InvalidPolicyAttributeException",
    );
    run(
        put(
            "/bad/policy",
            "x",
            &[
                "--tier",
                "Advanced",
                "--policies",
                r#"[{"Type":"Sometime","Version":"1.0","Attributes":{}}]"#,
            ],
        ),
        "InvalidPolicyTypeException",
    );
    // Nothing of the above was written.
    let d = ok(&server, &["ssm", "describe-parameters"]);
    assert_eq!(d["Parameters"], json!([]));

    ok(
        &server,
        &[
            "ssm",
            "put-parameter",
            "--name",
            "/ok",
            "--value",
            "v",
            "--type",
            "String",
        ],
    );
    let l = ok(
        &server,
        &[
            "ssm",
            "label-parameter-version",
            "--name",
            "/ok",
            "--labels",
            "1st",
        ],
    );
    assert_eq!(l["InvalidLabels"], json!(["1st"]));
    fails(
        &server,
        &["ssm", "get-parameter", "--name", "/ok:101"],
        "ParameterVersionNotFound",
    );
    let err = fails(
        &server,
        &[
            "ssm",
            "put-parameter",
            "--name",
            "/ok",
            "--value",
            "w",
            "--type",
            "String",
        ],
        "ParameterAlreadyExists",
    );
    assert!(
        err.contains("The parameter already exists. To overwrite this request, set the overwrite option in the request to true."),
        "{err}"
    );
    let h = ok(&server, &["ssm", "get-parameter-history", "--name", "/ok"]);
    assert_eq!(h["Parameters"].as_array().unwrap().len(), 1);
    assert_eq!(h["Parameters"][0]["Labels"], json!([]));
}

#[test]
fn boto3_parameter_store_story() {
    let server = Server::dev().start();
    let out = server.python("ssm_story.py", ACCOUNT, SECRET, &[]);
    assert!(
        out.status.success(),
        "ssm_story.py failed: {}",
        stderr(&out)
    );
    let v = json(&out);
    assert_eq!(v["high_throughput"], "true");
    assert_eq!(v["by_path_count"], 27);
    assert!(v["by_path_pages"].as_i64().unwrap() >= 3, "{v}");
    assert_eq!(v["password"], "s3cr3t!");
    assert_eq!(
        v["one_level"],
        json!(["/story/app/db/hosts", "/story/app/db/password"])
    );
    assert_eq!(v["hidden_is_not_plaintext"], true);
    assert_eq!(v["by_label"], "on");
    assert_eq!(v["by_version"], "off");
    assert_eq!(
        v["history"],
        json!([[1, "off", []], [2, "on", ["stable"]], [3, "canary", []]])
    );
    assert_eq!(v["version_not_found"]["code"], "ParameterVersionNotFound");
    assert_eq!(
        v["get_parameters"],
        json!({"found": ["/story/app/config/key00", "/story/app/feature"], "invalid": ["/story/app/nope"]})
    );
    assert_eq!(v["described"], 28);
    assert_eq!(
        v["described_secure"],
        json!([["/story/app/db/password", "alias/aws/ssm"]])
    );
    assert_eq!(v["tags"], json!([{"Key": "team", "Value": "data"}]));
    assert_eq!(
        v["deleted"],
        json!({"deleted": ["/story/app/config/key00"], "invalid": ["/story/app/config/missing"]})
    );
    assert_eq!(v["delete_missing"]["code"], "ParameterNotFound");
    assert_eq!(v["exists"]["code"], "ParameterAlreadyExists");
    assert_eq!(v["too_big"]["code"], "ValidationException");
    assert_eq!(v["reserved"]["code"], "ValidationException");
    assert_eq!(
        v["throttled"],
        json!({"code": "ThrottlingException", "message": "Rate exceeded"})
    );
    assert_eq!(v["throttled_all_same"], true);
    assert!(v["burst_succeeded"].as_i64().unwrap() >= 40, "{v}");
}
