"""boto3 against two Citadel nodes sharing one PostgreSQL database (crates/server/tests/e2e_cluster.rs).

Modes (first argument):
  coherence   A change made on node A is seen on node B: KMS keys, key state (timed: B must
              refuse a key disabled on A within one second), key policies, grants, aliases,
              IAM access keys, secrets and parameters. Prints a JSON summary.
  rotations N Creates N keys with automatic rotation enabled on node A, printing each key id
              as soon as its rotation is enabled (the Rust test kills the leader meanwhile).
  load SECS   Writes parameters /load/<n> on node A for SECS seconds, one at a time, and prints
              which were acknowledged and which errors were seen, as JSON.
  verify FILE Checks on node A that every parameter named in FILE (a JSON list of [name, value])
              is stored with its value. Prints the number checked.

Environment: CITADEL_URL_A, CITADEL_URL_B, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (the
root credentials of a production node, or any credentials in dev mode).
"""

import json
import os
import sys
import time

import boto3
import botocore.exceptions
from botocore.config import Config

# total_max_attempts counts the first try: no client retry hides a 503 from the test.
CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=15)
ROOT = (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
# How long a change on A may take to be visible on B.
LIMIT = 1.0


def client(service, node, creds=ROOT):
    url = os.environ["CITADEL_URL_A" if node == "a" else "CITADEL_URL_B"]
    session = boto3.session.Session(
        aws_access_key_id=creds[0], aws_secret_access_key=creds[1], region_name="us-east-1"
    )
    return session.client(service, endpoint_url=url, config=CONFIG)


def code_of(fn, **kwargs):
    """The error code `fn` fails with, or None when it succeeds."""
    try:
        fn(**kwargs)
        return None
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]


def until(what, check, limit=LIMIT):
    """Polls `check` until it returns a truthy value; returns the seconds it took."""
    start = time.monotonic()
    while True:
        result = check()
        elapsed = time.monotonic() - start
        if result:
            return elapsed
        if elapsed > limit:
            raise AssertionError(f"{what}: not seen on node B within {limit}s (last: {result!r})")
        time.sleep(0.01)


def coherence():
    kms_a, kms_b = client("kms", "a"), client("kms", "b")
    out = {}

    # A key created on A encrypts on B, and B's ciphertext decrypts on A.
    key = kms_a.create_key(Description="cluster")["KeyMetadata"]["KeyId"]
    blob = kms_b.encrypt(KeyId=key, Plaintext=b"cross-node")["CiphertextBlob"]
    assert kms_a.decrypt(CiphertextBlob=blob)["Plaintext"] == b"cross-node"

    # B has the key cached (it just used it); A disables it; B must refuse within a second.
    kms_b.encrypt(KeyId=key, Plaintext=b"warm")
    kms_a.disable_key(KeyId=key)
    out["disable_latency"] = until(
        "disable-key",
        lambda: code_of(kms_b.encrypt, KeyId=key, Plaintext=b"x") == "DisabledException",
    )
    kms_a.enable_key(KeyId=key)
    out["enable_latency"] = until(
        "enable-key", lambda: code_of(kms_b.encrypt, KeyId=key, Plaintext=b"x") is None
    )

    # A key policy that denies Encrypt to everyone (an explicit deny binds the root user too).
    account = client("sts", "a").get_caller_identity()["Account"]
    default_policy = kms_a.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Admin", "Effect": "Allow",
             "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "NoEncrypt", "Effect": "Deny", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*"},
        ],
    }
    kms_a.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(deny))
    out["policy_latency"] = until(
        "put-key-policy",
        lambda: code_of(kms_b.encrypt, KeyId=key, Plaintext=b"x") == "AccessDeniedException",
    )
    kms_a.put_key_policy(KeyId=key, PolicyName="default", Policy=default_policy)
    until("the policy restored", lambda: code_of(kms_b.encrypt, KeyId=key, Plaintext=b"x") is None)

    # Aliases: B follows the alias to whatever key A points it at.
    other = kms_a.create_key()["KeyMetadata"]["KeyId"]
    kms_a.create_alias(AliasName="alias/cluster", TargetKeyId=key)
    assert kms_b.encrypt(KeyId="alias/cluster", Plaintext=b"x")["KeyId"].endswith(key)
    kms_a.update_alias(AliasName="alias/cluster", TargetKeyId=other)
    out["alias_latency"] = until(
        "update-alias",
        lambda: kms_b.encrypt(KeyId="alias/cluster", Plaintext=b"x")["KeyId"].endswith(other),
    )

    # An IAM user without policies may use the key only through a grant.
    iam_a = client("iam", "a")
    user = iam_a.create_user(UserName="cluster-app")["User"]
    ak = iam_a.create_access_key(UserName="cluster-app")["AccessKey"]
    creds = (ak["AccessKeyId"], ak["SecretAccessKey"])
    app_b = client("kms", "b", creds)
    until("the new access key", lambda: code_of(app_b.encrypt, KeyId=key, Plaintext=b"x") == "AccessDeniedException")
    grant = kms_a.create_grant(KeyId=key, GranteePrincipal=user["Arn"], Operations=["Encrypt"])["GrantId"]
    out["grant_latency"] = until("create-grant", lambda: code_of(app_b.encrypt, KeyId=key, Plaintext=b"x") is None)
    kms_a.revoke_grant(KeyId=key, GrantId=grant)
    out["revoke_latency"] = until(
        "revoke-grant",
        lambda: code_of(app_b.encrypt, KeyId=key, Plaintext=b"x") == "AccessDeniedException",
    )
    # The user's key works on B (it is cached there now); deleted on A, B refuses it.
    sts_b = client("sts", "b", creds)
    assert sts_b.get_caller_identity()["Arn"] == user["Arn"]
    iam_a.delete_access_key(UserName="cluster-app", AccessKeyId=creds[0])
    out["access_key_code"] = None

    def refused():
        out["access_key_code"] = code_of(sts_b.get_caller_identity)
        return out["access_key_code"] is not None

    out["access_key_latency"] = until("delete-access-key", refused)

    # Secrets and parameters changed on A read back on B.
    sm_a, sm_b = client("secretsmanager", "a"), client("secretsmanager", "b")
    sm_a.create_secret(Name="cluster/db", SecretString="one")
    assert sm_b.get_secret_value(SecretId="cluster/db")["SecretString"] == "one"
    sm_a.put_secret_value(SecretId="cluster/db", SecretString="two")
    out["secret_latency"] = until(
        "put-secret-value", lambda: sm_b.get_secret_value(SecretId="cluster/db")["SecretString"] == "two"
    )
    ssm_a, ssm_b = client("ssm", "a"), client("ssm", "b")
    ssm_a.put_parameter(Name="/cluster/p", Value="one", Type="String")
    assert ssm_b.get_parameter(Name="/cluster/p")["Parameter"]["Value"] == "one"
    ssm_a.put_parameter(Name="/cluster/p", Value="two", Type="String", Overwrite=True)
    out["parameter_latency"] = until(
        "put-parameter", lambda: ssm_b.get_parameter(Name="/cluster/p")["Parameter"]["Value"] == "two"
    )
    # Service settings are cached on B (the throughput quota reads them on every request).
    setting = "/ssm/parameter-store/high-throughput-enabled"
    assert ssm_b.get_service_setting(SettingId=setting)["ServiceSetting"]["SettingValue"] == "false"
    ssm_a.update_service_setting(SettingId=setting, SettingValue="true")
    out["setting_latency"] = until(
        "update-service-setting",
        lambda: ssm_b.get_service_setting(SettingId=setting)["ServiceSetting"]["SettingValue"] == "true",
    )
    out["key"] = key
    print(json.dumps(out))


def rotations(n):
    kms_a = client("kms", "a")
    for _ in range(n):
        key = kms_a.create_key()["KeyMetadata"]["KeyId"]
        kms_a.enable_key_rotation(KeyId=key, RotationPeriodInDays=90)
        print(key, flush=True)


def load(seconds):
    ssm_a = client("ssm", "a")
    acked, errors = [], {}
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
        name, value = f"/load/{n}", f"value-{n}"
        try:
            ssm_a.put_parameter(Name=name, Value=value, Type="String")
            acked.append([name, value])
        except botocore.exceptions.ClientError as e:
            code = e.response["Error"]["Code"]
            errors[code] = errors.get(code, 0) + 1
            time.sleep(0.05)
        except botocore.exceptions.BotoCoreError as e:
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            time.sleep(0.05)
    print(json.dumps({"attempted": n, "acked": acked, "errors": errors}))


def verify(path):
    expected = json.load(open(path))
    ssm_a = client("ssm", "a")
    for i in range(0, len(expected), 10):
        chunk = dict(expected[i : i + 10])
        got = ssm_a.get_parameters(Names=list(chunk))
        assert not got["InvalidParameters"], f"acknowledged writes lost: {got['InvalidParameters']}"
        for p in got["Parameters"]:
            assert p["Value"] == chunk[p["Name"]], p["Name"]
    print(len(expected))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "coherence":
        coherence()
    elif mode == "rotations":
        rotations(int(sys.argv[2]))
    elif mode == "load":
        load(float(sys.argv[2]))
    elif mode == "verify":
        verify(sys.argv[2])
    else:
        raise SystemExit(f"unknown mode {mode}")
