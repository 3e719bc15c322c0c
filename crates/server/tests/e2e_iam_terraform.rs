//! IAM against the real binary in production mode, driven by the real `aws` CLI through the
//! calls Terraform's aws provider makes to create, refresh and destroy `aws_iam_policy`,
//! `aws_iam_user` (with an access key, a group membership and an attached policy),
//! `aws_iam_group` (renamed in place), `aws_iam_role` (with inline and attached policies) and
//! `aws_iam_instance_profile` — including the listings the provider reads before it deletes
//! (`ListInstanceProfilesForRole`, `ListMFADevices`, `ListSSHPublicKeys`, …) — and boto3
//! following `GetAccountAuthorizationDetails` page by page (`tests/clients/iam_authorization_details.py`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, json, stderr, stdout};
use serde_json::{Value, json};

const ROOT_ID: &str = "AKIACITADELTESTROOT1";
const ROOT_SECRET: &str = "cItAdElTeStSeCrEt/0123456789abcdefGHIJKL";
const ACCT: &str = "000000000000";

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const DEPLOY_V1: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}"#;
const DEPLOY_V2: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}]}"#;
const READ_PARAMS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:GetParameter","Resource":"*"}]}"#;

fn production() -> common::ServerBuilder {
    Server::production()
        .arg("--seal")
        .arg("file")
        .arg("--insecure-http")
        .env("CITADEL_ROOT_ACCESS_KEY_ID", ROOT_ID)
        .env("CITADEL_ROOT_SECRET_ACCESS_KEY", ROOT_SECRET)
}

/// Runs `aws iam …` as root and returns its JSON output (`null` for commands that print nothing).
fn iam(server: &Server, args: &[&str]) -> Value {
    let mut all = vec!["iam"];
    all.extend_from_slice(args);
    let out = server.aws(ROOT_ID, ROOT_SECRET, &all);
    assert!(out.status.success(), "aws {all:?} failed: {}", stderr(&out));
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        json(&out)
    }
}

/// Runs `aws iam …` expecting `code` and `message`.
fn iam_fails(server: &Server, args: &[&str], code: &str, message: &str) {
    let mut all = vec!["iam"];
    all.extend_from_slice(args);
    let out = server.aws(ROOT_ID, ROOT_SECRET, &all);
    let err = stderr(&out);
    assert!(!out.status.success(), "aws {all:?} should have failed");
    assert!(
        err.contains(&format!("({code})")) && err.contains(message),
        "aws {all:?}: expected {code}: {message}, got: {err}"
    );
}

fn names(v: &Value, list: &str, field: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap_or_else(|| panic!("{list} missing in {v}"))
        .iter()
        .map(|e| e[field].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn terraform_lifecycle_of_users_groups_roles_policies_and_instance_profiles() {
    let server = production().start();

    // ============================================================ apply
    // aws_iam_policy: CreatePolicy, then GetPolicy + GetPolicyVersion (default) on read.
    let created = iam(
        &server,
        &[
            "create-policy",
            "--policy-name",
            "deploy",
            "--policy-document",
            DEPLOY_V1,
            "--description",
            "deploy things",
        ],
    );
    let policy_arn = created["Policy"]["Arn"].as_str().unwrap().to_owned();
    assert_eq!(policy_arn, format!("arn:aws:iam::{ACCT}:policy/deploy"));
    // An update of the document is a new default version.
    iam(
        &server,
        &[
            "create-policy-version",
            "--policy-arn",
            &policy_arn,
            "--policy-document",
            DEPLOY_V2,
            "--set-as-default",
        ],
    );
    let got = iam(&server, &["get-policy", "--policy-arn", &policy_arn]);
    assert_eq!(got["Policy"]["DefaultVersionId"], "v2");
    let version = iam(
        &server,
        &[
            "get-policy-version",
            "--policy-arn",
            &policy_arn,
            "--version-id",
            "v2",
        ],
    );
    assert_eq!(
        version["PolicyVersion"]["Document"]["Statement"][0]["Action"],
        json!(["kms:Encrypt", "kms:Decrypt"])
    );

    // aws_iam_user + aws_iam_access_key.
    let user = iam(
        &server,
        &[
            "create-user",
            "--user-name",
            "ci",
            "--path",
            "/deploy/",
            "--tags",
            "Key=team,Value=platform",
        ],
    );
    assert_eq!(
        user["User"]["Arn"],
        format!("arn:aws:iam::{ACCT}:user/deploy/ci")
    );
    iam(&server, &["get-user", "--user-name", "ci"]);
    let key = iam(&server, &["create-access-key", "--user-name", "ci"]);
    let key_id = key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned();
    let keys = iam(&server, &["list-access-keys", "--user-name", "ci"]);
    assert_eq!(
        names(&keys, "AccessKeyMetadata", "AccessKeyId"),
        [key_id.as_str()]
    );

    // aws_iam_group (renamed in place by UpdateGroup) + aws_iam_user_group_membership.
    iam(&server, &["create-group", "--group-name", "deployers"]);
    iam(&server, &["get-group", "--group-name", "deployers"]);
    iam(
        &server,
        &[
            "add-user-to-group",
            "--group-name",
            "deployers",
            "--user-name",
            "ci",
        ],
    );
    let groups = iam(&server, &["list-groups-for-user", "--user-name", "ci"]);
    assert_eq!(names(&groups, "Groups", "GroupName"), ["deployers"]);
    iam(&server, &["create-group", "--group-name", "taken"]);
    iam_fails(
        &server,
        &[
            "update-group",
            "--group-name",
            "deployers",
            "--new-group-name",
            "taken",
        ],
        "EntityAlreadyExists",
        "Group with name taken already exists.",
    );
    iam(&server, &["delete-group", "--group-name", "taken"]);
    iam(
        &server,
        &[
            "update-group",
            "--group-name",
            "deployers",
            "--new-group-name",
            "releasers",
        ],
    );
    iam_fails(
        &server,
        &["get-group", "--group-name", "deployers"],
        "NoSuchEntity",
        "The group with name deployers cannot be found.",
    );
    let renamed = iam(&server, &["get-group", "--group-name", "releasers"]);
    assert_eq!(names(&renamed, "Users", "UserName"), ["ci"]);
    let groups = iam(&server, &["list-groups-for-user", "--user-name", "ci"]);
    assert_eq!(names(&groups, "Groups", "GroupName"), ["releasers"]);

    // aws_iam_user_policy_attachment.
    iam(
        &server,
        &[
            "attach-user-policy",
            "--user-name",
            "ci",
            "--policy-arn",
            &policy_arn,
        ],
    );
    let attached = iam(
        &server,
        &["list-attached-user-policies", "--user-name", "ci"],
    );
    assert_eq!(
        names(&attached, "AttachedPolicies", "PolicyArn"),
        [policy_arn.as_str()]
    );

    // aws_iam_role: CreateRole, then GetRole, ListRolePolicies, ListAttachedRolePolicies.
    iam(
        &server,
        &[
            "create-role",
            "--role-name",
            "app",
            "--assume-role-policy-document",
            TRUST,
        ],
    );
    iam(&server, &["get-role", "--role-name", "app"]);
    // aws_iam_role_policy and aws_iam_role_policy_attachment.
    iam(
        &server,
        &[
            "put-role-policy",
            "--role-name",
            "app",
            "--policy-name",
            "read-params",
            "--policy-document",
            READ_PARAMS,
        ],
    );
    let inline = iam(
        &server,
        &[
            "get-role-policy",
            "--role-name",
            "app",
            "--policy-name",
            "read-params",
        ],
    );
    assert_eq!(
        inline["PolicyDocument"]["Statement"][0]["Action"],
        "ssm:GetParameter"
    );
    iam(
        &server,
        &[
            "attach-role-policy",
            "--role-name",
            "app",
            "--policy-arn",
            &policy_arn,
        ],
    );
    let listed = iam(&server, &["list-role-policies", "--role-name", "app"]);
    assert_eq!(listed["PolicyNames"], json!(["read-params"]));
    let attached = iam(
        &server,
        &["list-attached-role-policies", "--role-name", "app"],
    );
    assert_eq!(
        names(&attached, "AttachedPolicies", "PolicyName"),
        ["deploy"]
    );

    // aws_iam_instance_profile: CreateInstanceProfile, AddRoleToInstanceProfile,
    // GetInstanceProfile.
    let profile = iam(
        &server,
        &[
            "create-instance-profile",
            "--instance-profile-name",
            "app-profile",
            "--tags",
            "Key=app,Value=web",
        ],
    );
    let p = &profile["InstanceProfile"];
    assert_eq!(
        p["Arn"],
        format!("arn:aws:iam::{ACCT}:instance-profile/app-profile")
    );
    assert_eq!(p["Path"], "/");
    assert_eq!(p["Roles"], json!([]));
    let profile_id = p["InstanceProfileId"].as_str().unwrap();
    assert!(
        profile_id.starts_with("AIPA") && profile_id.len() == 21,
        "{profile_id}"
    );
    iam_fails(
        &server,
        &[
            "create-instance-profile",
            "--instance-profile-name",
            "app-profile",
        ],
        "EntityAlreadyExists",
        "Instance Profile app-profile already exists.",
    );
    iam(
        &server,
        &[
            "add-role-to-instance-profile",
            "--instance-profile-name",
            "app-profile",
            "--role-name",
            "app",
        ],
    );
    iam_fails(
        &server,
        &[
            "add-role-to-instance-profile",
            "--instance-profile-name",
            "app-profile",
            "--role-name",
            "app",
        ],
        "LimitExceeded",
        "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1",
    );
    let got = iam(
        &server,
        &[
            "get-instance-profile",
            "--instance-profile-name",
            "app-profile",
        ],
    );
    let p = &got["InstanceProfile"];
    assert_eq!(names(p, "Roles", "RoleName"), ["app"]);
    assert_eq!(
        p["Roles"][0]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"],
        json!({"Service": "ec2.amazonaws.com"})
    );
    assert_eq!(p["Tags"], json!([{"Key": "app", "Value": "web"}]));
    let tags = iam(
        &server,
        &[
            "list-instance-profile-tags",
            "--instance-profile-name",
            "app-profile",
        ],
    );
    assert_eq!(tags["Tags"], json!([{"Key": "app", "Value": "web"}]));
    let all = iam(&server, &["list-instance-profiles"]);
    assert_eq!(
        names(&all, "InstanceProfiles", "InstanceProfileName"),
        ["app-profile"]
    );

    // ============================================================ what the account holds
    let entities = iam(
        &server,
        &["list-entities-for-policy", "--policy-arn", &policy_arn],
    );
    assert_eq!(names(&entities, "PolicyUsers", "UserName"), ["ci"]);
    assert_eq!(names(&entities, "PolicyRoles", "RoleName"), ["app"]);
    assert_eq!(entities["PolicyGroups"], json!([]));
    let roles_only = iam(
        &server,
        &[
            "list-entities-for-policy",
            "--policy-arn",
            &policy_arn,
            "--entity-filter",
            "Role",
        ],
    );
    assert_eq!(roles_only["PolicyUsers"], json!([]));
    assert_eq!(names(&roles_only, "PolicyRoles", "RoleName"), ["app"]);
    let details = iam(
        &server,
        &["get-account-authorization-details", "--page-size", "1"],
    );
    assert_eq!(names(&details, "UserDetailList", "UserName"), ["ci"]);
    assert_eq!(
        details["UserDetailList"][0]["GroupList"],
        json!(["releasers"])
    );
    assert_eq!(
        names(
            &details["RoleDetailList"][0],
            "InstanceProfileList",
            "InstanceProfileName"
        ),
        ["app-profile"]
    );
    let summary = iam(&server, &["get-account-summary"]);
    assert_eq!(summary["SummaryMap"]["InstanceProfiles"], 1);
    assert_eq!(summary["SummaryMap"]["Users"], 1);

    let out = boto3(&server, "iam_authorization_details.py");
    assert!(
        out.status.success() && stdout(&out).contains("OK"),
        "iam_authorization_details.py failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );

    // ============================================================ destroy
    // A role in an instance profile cannot go, nor a profile with a role.
    iam_fails(
        &server,
        &["delete-role", "--role-name", "app"],
        "DeleteConflict",
        "Cannot delete entity, must remove roles from instance profile first.",
    );
    iam_fails(
        &server,
        &[
            "delete-instance-profile",
            "--instance-profile-name",
            "app-profile",
        ],
        "DeleteConflict",
        "Cannot delete entity, must remove roles from instance profile first.",
    );

    // aws_iam_instance_profile: RemoveRoleFromInstanceProfile, DeleteInstanceProfile.
    iam(
        &server,
        &[
            "remove-role-from-instance-profile",
            "--instance-profile-name",
            "app-profile",
            "--role-name",
            "app",
        ],
    );
    iam(
        &server,
        &[
            "delete-instance-profile",
            "--instance-profile-name",
            "app-profile",
        ],
    );
    iam_fails(
        &server,
        &[
            "get-instance-profile",
            "--instance-profile-name",
            "app-profile",
        ],
        "NoSuchEntity",
        "Instance Profile app-profile cannot be found.",
    );

    // aws_iam_role_policy_attachment, aws_iam_role_policy, then aws_iam_role, whose deletion
    // first lists (and would empty) its instance profiles, attachments and inline policies.
    iam(
        &server,
        &[
            "detach-role-policy",
            "--role-name",
            "app",
            "--policy-arn",
            &policy_arn,
        ],
    );
    iam(
        &server,
        &[
            "delete-role-policy",
            "--role-name",
            "app",
            "--policy-name",
            "read-params",
        ],
    );
    let profiles = iam(
        &server,
        &["list-instance-profiles-for-role", "--role-name", "app"],
    );
    assert_eq!(profiles["InstanceProfiles"], json!([]));
    let attached = iam(
        &server,
        &["list-attached-role-policies", "--role-name", "app"],
    );
    assert_eq!(attached["AttachedPolicies"], json!([]));
    let inline = iam(&server, &["list-role-policies", "--role-name", "app"]);
    assert_eq!(inline["PolicyNames"], json!([]));
    iam(&server, &["delete-role", "--role-name", "app"]);
    iam_fails(
        &server,
        &["list-instance-profiles-for-role", "--role-name", "app"],
        "NoSuchEntity",
        "The role with name app cannot be found.",
    );

    // aws_iam_user_policy_attachment, aws_iam_user_group_membership, aws_iam_access_key.
    iam(
        &server,
        &[
            "detach-user-policy",
            "--user-name",
            "ci",
            "--policy-arn",
            &policy_arn,
        ],
    );
    iam(
        &server,
        &[
            "remove-user-from-group",
            "--group-name",
            "releasers",
            "--user-name",
            "ci",
        ],
    );
    iam(
        &server,
        &[
            "delete-access-key",
            "--user-name",
            "ci",
            "--access-key-id",
            &key_id,
        ],
    );
    iam(&server, &["delete-group", "--group-name", "releasers"]);

    // aws_iam_user (force_destroy): every credential listing first, then DeleteUser.
    let groups = iam(&server, &["list-groups-for-user", "--user-name", "ci"]);
    assert_eq!(groups["Groups"], json!([]));
    let keys = iam(&server, &["list-access-keys", "--user-name", "ci"]);
    assert_eq!(keys["AccessKeyMetadata"], json!([]));
    let ssh = iam(&server, &["list-ssh-public-keys", "--user-name", "ci"]);
    assert_eq!(ssh["SSHPublicKeys"], json!([]));
    let mfa = iam(&server, &["list-mfa-devices", "--user-name", "ci"]);
    assert_eq!(mfa["MFADevices"], json!([]));
    iam_fails(
        &server,
        &["get-login-profile", "--user-name", "ci"],
        "NoSuchEntity",
        "Login Profile for User ci cannot be found.",
    );
    iam_fails(
        &server,
        &["delete-login-profile", "--user-name", "ci"],
        "NoSuchEntity",
        "Login Profile for User ci cannot be found.",
    );
    let virtual_mfa = iam(&server, &["list-virtual-mfa-devices"]);
    assert_eq!(virtual_mfa["VirtualMFADevices"], json!([]));
    let certs = iam(&server, &["list-signing-certificates", "--user-name", "ci"]);
    assert_eq!(certs["Certificates"], json!([]));
    let creds = iam(
        &server,
        &["list-service-specific-credentials", "--user-name", "ci"],
    );
    assert_eq!(creds["ServiceSpecificCredentials"], json!([]));
    let attached = iam(
        &server,
        &["list-attached-user-policies", "--user-name", "ci"],
    );
    assert_eq!(attached["AttachedPolicies"], json!([]));
    let inline = iam(&server, &["list-user-policies", "--user-name", "ci"]);
    assert_eq!(inline["PolicyNames"], json!([]));
    iam(&server, &["delete-user", "--user-name", "ci"]);
    // The credential listings know users that are gone.
    for op in [
        "list-mfa-devices",
        "list-ssh-public-keys",
        "list-signing-certificates",
        "list-service-specific-credentials",
        "get-login-profile",
        "delete-login-profile",
    ] {
        iam_fails(
            &server,
            &[op, "--user-name", "ci"],
            "NoSuchEntity",
            "The user with name ci cannot be found.",
        );
    }

    // aws_iam_policy: no entity uses it any more; non-default versions go first.
    let entities = iam(
        &server,
        &["list-entities-for-policy", "--policy-arn", &policy_arn],
    );
    for list in ["PolicyGroups", "PolicyUsers", "PolicyRoles"] {
        assert_eq!(entities[list], json!([]), "{list}");
    }
    let versions = iam(
        &server,
        &["list-policy-versions", "--policy-arn", &policy_arn],
    );
    for v in versions["Versions"].as_array().unwrap() {
        if v["IsDefaultVersion"] == false {
            iam(
                &server,
                &[
                    "delete-policy-version",
                    "--policy-arn",
                    &policy_arn,
                    "--version-id",
                    v["VersionId"].as_str().unwrap(),
                ],
            );
        }
    }
    iam(&server, &["delete-policy", "--policy-arn", &policy_arn]);
    iam_fails(
        &server,
        &["list-entities-for-policy", "--policy-arn", &policy_arn],
        "NoSuchEntity",
        &format!("Policy {policy_arn} does not exist or is not attachable."),
    );

    // Nothing is left behind.
    let details = iam(&server, &["get-account-authorization-details"]);
    for list in [
        "UserDetailList",
        "GroupDetailList",
        "RoleDetailList",
        "Policies",
    ] {
        assert_eq!(details[list], json!([]), "{list}");
    }
    let summary = iam(&server, &["get-account-summary"]);
    for k in ["Users", "Groups", "Roles", "Policies", "InstanceProfiles"] {
        assert_eq!(summary["SummaryMap"][k], 0, "{k}");
    }
}

/// Runs `tests/clients/<script>` (next to this file) with python3 as root.
fn boto3(server: &Server, script: &str) -> std::process::Output {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let mut cmd = Command::new("python3");
    cmd.arg(path).env("CITADEL_URL", &server.url);
    for var in [
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_CA_BUNDLE",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_ACCESS_KEY_ID", ROOT_ID)
        .env("AWS_SECRET_ACCESS_KEY", ROOT_SECRET)
        .env("AWS_CONFIG_FILE", "/nonexistent/citadel-test-aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/citadel-test-aws-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1");
    cmd.output().expect("running python3")
}
