"""boto3 against Citadel: Secrets Manager secrets read through Parameter Store's
/aws/reference/secretsmanager/ references, and the operator's Parameter Store throughput quota.
Prints a JSON summary for the Rust test to assert on; any unexpected failure raises.

Usage: ssm_reference.py story | throttle
Environment: CITADEL_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (dev mode: a 12-digit access
key id selects the account).
"""

import base64
import concurrent.futures
import json
import os
import sys
import time

import boto3
import botocore.exceptions
from botocore.config import Config

config = Config(retries={"max_attempts": 1, "mode": "standard"})
session = boto3.session.Session(
    aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    region_name="us-east-1",
)
ssm = session.client("ssm", endpoint_url=os.environ["CITADEL_URL"], config=config)
sm = session.client("secretsmanager", endpoint_url=os.environ["CITADEL_URL"], config=config)
REF = "/aws/reference/secretsmanager/"


def error(fn, **kwargs):
    try:
        fn(**kwargs)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError(f"{fn.__name__} unexpectedly succeeded")


def story():
    out = {}
    created = sm.create_secret(Name="ref/db", SecretString=json.dumps({"password": "pw1"}))
    second = sm.put_secret_value(SecretId="ref/db", SecretString=json.dumps({"password": "pw2"}))
    sm.create_secret(Name="ref/bin", SecretBinary=b"\x00\x01\xfe\xff")
    ssm.put_parameter(Name="/ref/plain", Value="plain", Type="String")

    p = ssm.get_parameter(Name=REF + "ref/db", WithDecryption=True)["Parameter"]
    source = json.loads(p["SourceResult"])
    out["current"] = {
        "name": p["Name"],
        "type": p["Type"],
        "password": json.loads(p["Value"])["password"],
        "version": p["Version"],
        "arn_is_secret": p["ARN"] == created["ARN"],
        "modified_is_date": hasattr(p["LastModifiedDate"], "year"),
        "source_version_is_second": source["versionId"] == second["VersionId"],
        "source_stages": source["versionStages"],
        "source_keys": sorted(source),
    }
    out["previous"] = json.loads(
        ssm.get_parameter(Name=REF + "ref/db:AWSPREVIOUS", WithDecryption=True)["Parameter"]["Value"]
    )["password"]
    out["by_version_id"] = json.loads(
        ssm.get_parameter(Name=REF + "ref/db:" + created["VersionId"], WithDecryption=True)[
            "Parameter"
        ]["Value"]
    )["password"]
    binary = ssm.get_parameter(Name=REF + "ref/bin", WithDecryption=True)["Parameter"]
    out["binary"] = list(base64.b64decode(binary["Value"]))

    got = ssm.get_parameters(
        Names=[REF + "ref/db", REF + "ref/missing", "/ref/plain"], WithDecryption=True
    )
    out["get_parameters"] = {
        "found": sorted(p["Name"] for p in got["Parameters"]),
        "invalid": got["InvalidParameters"],
    }
    out["missing"] = error(ssm.get_parameter, Name=REF + "ref/missing", WithDecryption=True)
    out["without_decryption"] = error(ssm.get_parameter, Name=REF + "ref/db")
    out["by_path"] = error(
        ssm.get_parameters_by_path, Path="/aws/reference/secretsmanager", WithDecryption=True
    )
    out["put"] = error(ssm.put_parameter, Name=REF + "ref/db", Value="x", Type="String", Overwrite=True)
    return out


def throttle():
    def call(_):
        try:
            ssm.get_parameter(Name="/throttle/missing")
            return "ok"
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Code"]

    # A burst from several threads; the elapsed time bounds how much the bucket refilled.
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        codes = list(pool.map(call, range(30)))
    elapsed = time.monotonic() - start
    # The bucket refills at the configured rate.
    time.sleep(1.5)
    after = error(ssm.get_parameter, Name="/throttle/missing")
    return {"codes": codes, "elapsed": elapsed, "after_pause": after}


print(json.dumps({"story": story, "throttle": throttle}[sys.argv[1]]()))
