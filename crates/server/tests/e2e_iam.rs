//! IAM against the real binary in production mode, driven by the real `aws` CLI: users, access
//! keys, inline and managed policies, roles, groups, their errors, and the new user's keys
//! authenticating (and stopping to the moment they are deactivated or deleted).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, json, stderr};
use serde_json::{Value, json};

const ROOT_ID: &str = "AKIACITADELTESTROOT1";
const ROOT_SECRET: &str = "cItAdElTeStSeCrEt/0123456789abcdefGHIJKL";

fn production() -> common::ServerBuilder {
    Server::production()
        .arg("--seal")
        .arg("file")
        .arg("--insecure-http")
        .env("CITADEL_ROOT_ACCESS_KEY_ID", ROOT_ID)
        .env("CITADEL_ROOT_SECRET_ACCESS_KEY", ROOT_SECRET)
}

/// Runs `aws …` as root and returns its JSON output (`null` for commands that print nothing).
fn root_ok(server: &Server, args: &[&str]) -> Value {
    ok(server, ROOT_ID, ROOT_SECRET, args)
}

fn ok(server: &Server, id: &str, secret: &str, args: &[&str]) -> Value {
    let out = server.aws(id, secret, args);
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

/// Runs `aws …` expecting it to fail with `code`; returns the CLI's error text.
fn fails(server: &Server, id: &str, secret: &str, args: &[&str], code: &str) -> String {
    let out = server.aws(id, secret, args);
    let err = stderr(&out);
    assert!(!out.status.success(), "aws {args:?} should have failed");
    assert!(
        err.contains(&format!("({code})")),
        "aws {args:?}: expected {code}, got: {err}"
    );
    err
}

fn root_fails(server: &Server, args: &[&str], code: &str) -> String {
    fails(server, ROOT_ID, ROOT_SECRET, args, code)
}

const ENCRYPT_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}"#;
const TRUST: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"}, "Action": "sts:AssumeRole"}]}"#;

#[test]
fn users_keys_policies_roles_and_groups_with_the_aws_cli() {
    let server = production().start();

    // ---------------------------------------------------------------- users
    let created = root_ok(&server, &["iam", "create-user", "--user-name", "alice"]);
    let user = &created["User"];
    assert_eq!(user["UserName"], "alice");
    assert_eq!(user["Path"], "/");
    assert_eq!(user["Arn"], "arn:aws:iam::000000000000:user/alice");
    let user_id = user["UserId"].as_str().unwrap().to_owned();
    assert!(
        user_id.starts_with("AIDA") && user_id.len() == 21,
        "{user_id}"
    );
    assert!(user["CreateDate"].is_string());

    let err = root_fails(
        &server,
        &["iam", "create-user", "--user-name", "alice"],
        "EntityAlreadyExists",
    );
    assert!(
        err.contains("User with name alice already exists."),
        "{err}"
    );
    let err = root_fails(
        &server,
        &["iam", "get-user", "--user-name", "nobody"],
        "NoSuchEntity",
    );
    assert!(
        err.contains("The user with name nobody cannot be found."),
        "{err}"
    );
    let err = root_fails(
        &server,
        &["iam", "create-user", "--user-name", "bad name"],
        "ValidationError",
    );
    assert!(
        err.contains("Member must satisfy regular expression pattern"),
        "{err}"
    );

    root_ok(
        &server,
        &[
            "iam",
            "create-user",
            "--user-name",
            "bob",
            "--path",
            "/eng/",
            "--tags",
            "Key=team,Value=blue",
        ],
    );
    let got = root_ok(&server, &["iam", "get-user", "--user-name", "BOB"]);
    assert_eq!(got["User"]["Arn"], "arn:aws:iam::000000000000:user/eng/bob");
    assert_eq!(
        got["User"]["Tags"],
        json!([{"Key": "team", "Value": "blue"}])
    );
    // The CLI follows Marker/IsTruncated through pages of one.
    let listed = root_ok(&server, &["iam", "list-users", "--page-size", "1"]);
    let names: Vec<&str> = listed["Users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["UserName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    let eng = root_ok(&server, &["iam", "list-users", "--path-prefix", "/eng/"]);
    assert_eq!(eng["Users"].as_array().unwrap().len(), 1);

    // Without a name, GetUser answers about the caller: here the root user.
    let me = root_ok(&server, &["iam", "get-user"]);
    assert_eq!(me["User"]["Arn"], "arn:aws:iam::000000000000:root");
    assert_eq!(me["User"]["UserId"], "000000000000");

    // ---------------------------------------------------------------- access keys
    let k1 = root_ok(
        &server,
        &["iam", "create-access-key", "--user-name", "alice"],
    );
    let k1 = &k1["AccessKey"];
    assert_eq!(k1["UserName"], "alice");
    assert_eq!(k1["Status"], "Active");
    let (id1, secret1) = (
        k1["AccessKeyId"].as_str().unwrap().to_owned(),
        k1["SecretAccessKey"].as_str().unwrap().to_owned(),
    );
    assert!(id1.starts_with("AKIA") && id1.len() == 20, "{id1}");
    assert_eq!(secret1.len(), 40);
    let k2 = root_ok(
        &server,
        &["iam", "create-access-key", "--user-name", "alice"],
    );
    let (id2, secret2) = (
        k2["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned(),
        k2["AccessKey"]["SecretAccessKey"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let err = root_fails(
        &server,
        &["iam", "create-access-key", "--user-name", "alice"],
        "LimitExceeded",
    );
    assert!(
        err.contains("Cannot exceed quota for AccessKeysPerUser: 2"),
        "{err}"
    );
    let keys = root_ok(
        &server,
        &["iam", "list-access-keys", "--user-name", "alice"],
    );
    let listed: Vec<&str> = keys["AccessKeyMetadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["AccessKeyId"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [id1.as_str(), id2.as_str()]);
    assert!(
        keys.to_string().find(&secret1).is_none(),
        "the secret is shown once only"
    );

    // ---------------------------------------------------------------- the user's own keys
    let me = ok(&server, &id1, &secret1, &["sts", "get-caller-identity"]);
    assert_eq!(me["Arn"], "arn:aws:iam::000000000000:user/alice");
    assert_eq!(me["UserId"], user_id.as_str());
    assert_eq!(me["Account"], "000000000000");
    // Users have no permissions until policies are evaluated: implicitly denied.
    let out = server.aws(&id1, &secret1, &["iam", "list-users"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not authorized to perform: iam:ListUsers"),
        "{}",
        stderr(&out)
    );

    // Deactivation takes effect on the very next request, and so does reactivation.
    root_ok(
        &server,
        &[
            "iam",
            "update-access-key",
            "--user-name",
            "alice",
            "--access-key-id",
            &id1,
            "--status",
            "Inactive",
        ],
    );
    fails(
        &server,
        &id1,
        &secret1,
        &["sts", "get-caller-identity"],
        "InvalidClientTokenId",
    );
    let keys = root_ok(
        &server,
        &["iam", "list-access-keys", "--user-name", "alice"],
    );
    assert_eq!(keys["AccessKeyMetadata"][0]["Status"], "Inactive");
    root_ok(
        &server,
        &[
            "iam",
            "update-access-key",
            "--user-name",
            "alice",
            "--access-key-id",
            &id1,
            "--status",
            "Active",
        ],
    );
    ok(&server, &id1, &secret1, &["sts", "get-caller-identity"]);

    // The second key works until it is deleted.
    ok(&server, &id2, &secret2, &["sts", "get-caller-identity"]);
    root_ok(
        &server,
        &[
            "iam",
            "delete-access-key",
            "--user-name",
            "alice",
            "--access-key-id",
            &id2,
        ],
    );
    fails(
        &server,
        &id2,
        &secret2,
        &["sts", "get-caller-identity"],
        "InvalidClientTokenId",
    );
    let err = root_fails(
        &server,
        &[
            "iam",
            "delete-access-key",
            "--user-name",
            "alice",
            "--access-key-id",
            &id2,
        ],
        "NoSuchEntity",
    );
    assert!(
        err.contains(&format!("The Access Key with id {id2} cannot be found.")),
        "{err}"
    );

    let used = root_ok(
        &server,
        &["iam", "get-access-key-last-used", "--access-key-id", &id1],
    );
    assert_eq!(used["UserName"], "alice");
    assert_eq!(used["AccessKeyLastUsed"]["ServiceName"], "sts");
    assert_eq!(used["AccessKeyLastUsed"]["Region"], "us-east-1");
    assert!(used["AccessKeyLastUsed"]["LastUsedDate"].is_string());

    // ---------------------------------------------------------------- inline policies
    root_ok(
        &server,
        &[
            "iam",
            "put-user-policy",
            "--user-name",
            "alice",
            "--policy-name",
            "encrypt",
            "--policy-document",
            ENCRYPT_ONLY,
        ],
    );
    let got = root_ok(
        &server,
        &[
            "iam",
            "get-user-policy",
            "--user-name",
            "alice",
            "--policy-name",
            "encrypt",
        ],
    );
    // IAM returns the document URL-encoded; the CLI decodes it back into JSON.
    assert_eq!(
        got["PolicyDocument"],
        serde_json::from_str::<Value>(ENCRYPT_ONLY).unwrap()
    );
    assert_eq!(got["UserName"], "alice");
    let names = root_ok(
        &server,
        &["iam", "list-user-policies", "--user-name", "alice"],
    );
    assert_eq!(names["PolicyNames"], json!(["encrypt"]));
    let err = root_fails(
        &server,
        &[
            "iam",
            "put-user-policy",
            "--user-name",
            "alice",
            "--policy-name",
            "bad",
            "--policy-document",
            "{\"Statement\": ",
        ],
        "MalformedPolicyDocument",
    );
    assert!(err.contains("Syntax errors in policy."), "{err}");
    root_fails(
        &server,
        &[
            "iam",
            "get-user-policy",
            "--user-name",
            "alice",
            "--policy-name",
            "nope",
        ],
        "NoSuchEntity",
    );

    // ---------------------------------------------------------------- managed policies
    let policy = root_ok(
        &server,
        &[
            "iam",
            "create-policy",
            "--policy-name",
            "EncryptOnly",
            "--policy-document",
            ENCRYPT_ONLY,
            "--description",
            "encrypt, nothing else",
        ],
    );
    let policy_arn = policy["Policy"]["Arn"].as_str().unwrap().to_owned();
    assert_eq!(policy_arn, "arn:aws:iam::000000000000:policy/EncryptOnly");
    assert_eq!(policy["Policy"]["DefaultVersionId"], "v1");
    assert!(
        policy["Policy"]["PolicyId"]
            .as_str()
            .unwrap()
            .starts_with("ANPA")
    );
    root_fails(
        &server,
        &[
            "iam",
            "create-policy",
            "--policy-name",
            "EncryptOnly",
            "--policy-document",
            ENCRYPT_ONLY,
        ],
        "EntityAlreadyExists",
    );
    root_ok(
        &server,
        &[
            "iam",
            "attach-user-policy",
            "--user-name",
            "alice",
            "--policy-arn",
            &policy_arn,
        ],
    );
    let attached = root_ok(
        &server,
        &["iam", "list-attached-user-policies", "--user-name", "alice"],
    );
    assert_eq!(
        attached["AttachedPolicies"],
        json!([{"PolicyName": "EncryptOnly", "PolicyArn": policy_arn}])
    );
    let got = root_ok(&server, &["iam", "get-policy", "--policy-arn", &policy_arn]);
    assert_eq!(got["Policy"]["AttachmentCount"], 1);
    assert_eq!(got["Policy"]["Description"], "encrypt, nothing else");
    let v2 = root_ok(
        &server,
        &[
            "iam",
            "create-policy-version",
            "--policy-arn",
            &policy_arn,
            "--policy-document",
            &ENCRYPT_ONLY.replace("kms:Encrypt", "kms:Decrypt"),
            "--set-as-default",
        ],
    );
    assert_eq!(v2["PolicyVersion"]["VersionId"], "v2");
    assert_eq!(v2["PolicyVersion"]["IsDefaultVersion"], true);
    let doc = root_ok(
        &server,
        &[
            "iam",
            "get-policy-version",
            "--policy-arn",
            &policy_arn,
            "--version-id",
            "v2",
        ],
    );
    assert_eq!(
        doc["PolicyVersion"]["Document"]["Statement"][0]["Action"],
        "kms:Decrypt"
    );
    let versions = root_ok(
        &server,
        &["iam", "list-policy-versions", "--policy-arn", &policy_arn],
    );
    let ids: Vec<&str> = versions["Versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["VersionId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["v2", "v1"]);
    let err = root_fails(
        &server,
        &[
            "iam",
            "delete-policy-version",
            "--policy-arn",
            &policy_arn,
            "--version-id",
            "v2",
        ],
        "DeleteConflict",
    );
    assert!(
        err.contains("Cannot delete the default version of a policy."),
        "{err}"
    );
    let err = root_fails(
        &server,
        &["iam", "delete-policy", "--policy-arn", &policy_arn],
        "DeleteConflict",
    );
    assert!(
        err.contains("Cannot delete a policy attached to entities."),
        "{err}"
    );
    let err = root_fails(
        &server,
        &[
            "iam",
            "attach-user-policy",
            "--user-name",
            "alice",
            "--policy-arn",
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
        ],
        "NoSuchEntity",
    );
    assert!(
        err.contains(
            "Policy arn:aws:iam::aws:policy/ReadOnlyAccess does not exist or is not attachable."
        ),
        "{err}"
    );

    // ---------------------------------------------------------------- roles
    let role = root_ok(
        &server,
        &[
            "iam",
            "create-role",
            "--role-name",
            "Deployer",
            "--assume-role-policy-document",
            TRUST,
            "--description",
            "deploys things",
            "--max-session-duration",
            "7200",
        ],
    );
    assert_eq!(
        role["Role"]["Arn"],
        "arn:aws:iam::000000000000:role/Deployer"
    );
    assert!(role["Role"]["RoleId"].as_str().unwrap().starts_with("AROA"));
    assert_eq!(
        role["Role"]["AssumeRolePolicyDocument"],
        serde_json::from_str::<Value>(TRUST).unwrap()
    );
    let got = root_ok(&server, &["iam", "get-role", "--role-name", "Deployer"]);
    assert_eq!(got["Role"]["MaxSessionDuration"], 7200);
    assert_eq!(got["Role"]["Description"], "deploys things");
    assert_eq!(
        got["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::000000000000:root"
    );
    root_ok(
        &server,
        &[
            "iam",
            "update-role",
            "--role-name",
            "Deployer",
            "--max-session-duration",
            "43200",
        ],
    );
    let roles = root_ok(&server, &["iam", "list-roles"]);
    assert_eq!(roles["Roles"][0]["MaxSessionDuration"], 43200);
    root_fails(
        &server,
        &[
            "iam",
            "create-role",
            "--role-name",
            "Deployer",
            "--assume-role-policy-document",
            TRUST,
        ],
        "EntityAlreadyExists",
    );
    root_ok(
        &server,
        &[
            "iam",
            "attach-role-policy",
            "--role-name",
            "Deployer",
            "--policy-arn",
            &policy_arn,
        ],
    );
    let err = root_fails(
        &server,
        &["iam", "delete-role", "--role-name", "Deployer"],
        "DeleteConflict",
    );
    assert!(
        err.contains("Cannot delete entity, must detach all policies first."),
        "{err}"
    );

    // ---------------------------------------------------------------- groups
    let group = root_ok(&server, &["iam", "create-group", "--group-name", "devs"]);
    assert_eq!(
        group["Group"]["Arn"],
        "arn:aws:iam::000000000000:group/devs"
    );
    root_ok(
        &server,
        &[
            "iam",
            "add-user-to-group",
            "--group-name",
            "devs",
            "--user-name",
            "alice",
        ],
    );
    let got = root_ok(&server, &["iam", "get-group", "--group-name", "devs"]);
    assert_eq!(got["Users"][0]["UserName"], "alice");
    let groups = root_ok(
        &server,
        &["iam", "list-groups-for-user", "--user-name", "alice"],
    );
    assert_eq!(groups["Groups"][0]["GroupName"], "devs");
    let err = root_fails(
        &server,
        &["iam", "delete-group", "--group-name", "devs"],
        "DeleteConflict",
    );
    assert!(
        err.contains("Cannot delete entity, must remove users from group first."),
        "{err}"
    );

    // ---------------------------------------------------------------- survives a hard restart
    let first_log = server.log();
    let (data_dir, _keep) = server.kill9();
    let server = production().data_dir(&data_dir).start();
    let me = ok(&server, &id1, &secret1, &["sts", "get-caller-identity"]);
    assert_eq!(me["Arn"], "arn:aws:iam::000000000000:user/alice");
    fails(
        &server,
        &id2,
        &secret2,
        &["sts", "get-caller-identity"],
        "InvalidClientTokenId",
    );

    // ---------------------------------------------------------------- deletion order
    let err = root_fails(
        &server,
        &["iam", "delete-user", "--user-name", "alice"],
        "DeleteConflict",
    );
    assert!(
        err.contains("Cannot delete entity, must delete access keys first."),
        "{err}"
    );
    root_ok(
        &server,
        &[
            "iam",
            "delete-access-key",
            "--user-name",
            "alice",
            "--access-key-id",
            &id1,
        ],
    );
    fails(
        &server,
        &id1,
        &secret1,
        &["sts", "get-caller-identity"],
        "InvalidClientTokenId",
    );
    let err = root_fails(
        &server,
        &["iam", "delete-user", "--user-name", "alice"],
        "DeleteConflict",
    );
    assert!(
        err.contains("Cannot delete entity, must delete policies first."),
        "{err}"
    );
    root_ok(
        &server,
        &[
            "iam",
            "delete-user-policy",
            "--user-name",
            "alice",
            "--policy-name",
            "encrypt",
        ],
    );
    let err = root_fails(
        &server,
        &["iam", "delete-user", "--user-name", "alice"],
        "DeleteConflict",
    );
    assert!(
        err.contains("Cannot delete entity, must detach all policies first."),
        "{err}"
    );
    for (kind, flag, name) in [
        ("user", "--user-name", "alice"),
        ("role", "--role-name", "Deployer"),
    ] {
        root_ok(
            &server,
            &[
                "iam",
                &format!("detach-{kind}-policy"),
                flag,
                name,
                "--policy-arn",
                &policy_arn,
            ],
        );
    }
    root_ok(
        &server,
        &[
            "iam",
            "remove-user-from-group",
            "--group-name",
            "devs",
            "--user-name",
            "alice",
        ],
    );
    root_ok(&server, &["iam", "delete-user", "--user-name", "alice"]);
    root_fails(
        &server,
        &["iam", "get-user", "--user-name", "alice"],
        "NoSuchEntity",
    );
    root_ok(&server, &["iam", "delete-group", "--group-name", "devs"]);
    root_ok(&server, &["iam", "delete-role", "--role-name", "Deployer"]);
    let err = root_fails(
        &server,
        &["iam", "delete-policy", "--policy-arn", &policy_arn],
        "DeleteConflict",
    );
    assert!(
        err.contains("This policy has more than one version."),
        "{err}"
    );
    root_ok(
        &server,
        &[
            "iam",
            "set-default-policy-version",
            "--policy-arn",
            &policy_arn,
            "--version-id",
            "v1",
        ],
    );
    root_ok(
        &server,
        &[
            "iam",
            "delete-policy-version",
            "--policy-arn",
            &policy_arn,
            "--version-id",
            "v2",
        ],
    );
    root_ok(
        &server,
        &["iam", "delete-policy", "--policy-arn", &policy_arn],
    );
    root_ok(&server, &["iam", "delete-user", "--user-name", "bob"]);
    let listed = root_ok(&server, &["iam", "list-users"]);
    assert_eq!(listed["Users"], json!([]));

    let log = first_log + &server.log();
    for secret in [&secret1, &secret2] {
        assert!(
            !log.contains(secret.as_str()),
            "an access key secret reached the log"
        );
    }
}

/// IAM actions are authorized on the entity they act on (with its path), so the classic
/// self-service policy — manage your own access keys, `arn:aws:iam::*:user/${aws:username}` —
/// lets a user rotate their own keys and nobody else's; attachments carry `iam:PolicyARN`.
#[test]
fn iam_actions_are_authorized_on_the_entity_they_name() {
    let server = production().start();
    root_ok(
        &server,
        &[
            "iam",
            "create-user",
            "--user-name",
            "dev",
            "--path",
            "/eng/",
        ],
    );
    root_ok(&server, &["iam", "create-user", "--user-name", "ops"]);
    let self_service = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["iam:CreateAccessKey","iam:ListAccessKeys","iam:DeleteAccessKey","iam:GetUser"],
         "Resource":"arn:aws:iam::*:user/eng/${aws:username}"},
        {"Effect":"Allow","Action":"iam:AttachUserPolicy","Resource":"arn:aws:iam::*:user/*",
         "Condition":{"ArnEquals":{"iam:PolicyARN":"arn:aws:iam::000000000000:policy/allowed"}}}]}"#;
    root_ok(
        &server,
        &[
            "iam",
            "put-user-policy",
            "--user-name",
            "dev",
            "--policy-name",
            "self",
            "--policy-document",
            self_service,
        ],
    );
    let key = root_ok(&server, &["iam", "create-access-key", "--user-name", "dev"]);
    let (id, secret) = (
        key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned(),
        key["AccessKey"]["SecretAccessKey"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    // Their own keys, named or implied.
    let listed = ok(&server, &id, &secret, &["iam", "list-access-keys"]);
    assert_eq!(listed["AccessKeyMetadata"].as_array().unwrap().len(), 1);
    ok(
        &server,
        &id,
        &secret,
        &["iam", "list-access-keys", "--user-name", "dev"],
    );
    ok(
        &server,
        &id,
        &secret,
        &["iam", "get-user", "--user-name", "dev"],
    );
    // Someone else's: denied, naming the other user's ARN.
    let err = fails(
        &server,
        &id,
        &secret,
        &["iam", "create-access-key", "--user-name", "ops"],
        "AccessDenied",
    );
    assert!(
        err.contains(
            "User: arn:aws:iam::000000000000:user/eng/dev is not authorized to perform: iam:CreateAccessKey on resource: arn:aws:iam::000000000000:user/ops"
        ),
        "{err}"
    );
    // Attaching: only the policy the condition names.
    for name in ["allowed", "other"] {
        root_ok(
            &server,
            &[
                "iam",
                "create-policy",
                "--policy-name",
                name,
                "--policy-document",
                ENCRYPT_ONLY,
            ],
        );
    }
    ok(
        &server,
        &id,
        &secret,
        &[
            "iam",
            "attach-user-policy",
            "--user-name",
            "ops",
            "--policy-arn",
            "arn:aws:iam::000000000000:policy/allowed",
        ],
    );
    fails(
        &server,
        &id,
        &secret,
        &[
            "iam",
            "attach-user-policy",
            "--user-name",
            "ops",
            "--policy-arn",
            "arn:aws:iam::000000000000:policy/other",
        ],
        "AccessDenied",
    );
}
