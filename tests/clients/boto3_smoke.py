"""boto3 against Citadel: STS GetCallerIdentity answers from the verified principal, and a
KMS call is authenticated and answered (with a clear error for an operation not implemented).
Prints a JSON summary for the Rust test to assert on."""

import json
import os

import boto3
import botocore.exceptions
from botocore.config import Config

session = boto3.session.Session(
    aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    region_name="us-east-1",
)
config = Config(retries={"max_attempts": 1, "mode": "standard"})
url = os.environ["CITADEL_URL"]
verify = os.environ.get("CITADEL_CA_BUNDLE") or True

out = {}
sts = session.client("sts", endpoint_url=url, config=config, verify=verify)
ident = sts.get_caller_identity()
out["identity"] = {k: ident[k] for k in ("Account", "Arn", "UserId")}
out["sts_request_id"] = ident["ResponseMetadata"]["RequestId"]

kms = session.client("kms", endpoint_url=url, config=config, verify=verify)
try:
    kms.describe_custom_key_stores()
    out["kms"] = {"ok": True}
except botocore.exceptions.ClientError as e:
    out["kms"] = {
        "code": e.response["Error"]["Code"],
        "message": e.response["Error"].get("Message", ""),
        "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
        "request_id": e.response["ResponseMetadata"].get("RequestId", ""),
    }
print(json.dumps(out))
