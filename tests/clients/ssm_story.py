"""boto3 against Citadel Parameter Store: a configuration hierarchy with SecureStrings, versions,
labels, history, botocore's paginators (GetParametersByPath, DescribeParameters,
GetParameterHistory), tags, deletes, the errors applications handle, and the throughput quota.
Prints a JSON summary for the Rust test to assert on; any unexpected failure raises.

Environment: CITADEL_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (dev mode: a 12-digit access
key id selects the account).
"""

import concurrent.futures
import json
import os

import boto3
import botocore.exceptions
from botocore.config import Config

config = Config(retries={"max_attempts": 1, "mode": "standard"})


def client(access_key):
    session = boto3.session.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    return session.client("ssm", endpoint_url=os.environ["CITADEL_URL"], config=config)


ssm = client(os.environ["AWS_ACCESS_KEY_ID"])
out = {}


def error(fn, **kwargs):
    try:
        fn(**kwargs)
    except botocore.exceptions.ClientError as e:
        return {"code": e.response["Error"]["Code"], "message": e.response["Error"].get("Message", "")}
    raise AssertionError(f"{fn.__name__} unexpectedly succeeded")


# This story makes more than 40 requests a second: the account buys higher throughput first.
ssm.update_service_setting(
    SettingId="/ssm/parameter-store/high-throughput-enabled", SettingValue="true"
)
out["high_throughput"] = ssm.get_service_setting(
    SettingId="/ssm/parameter-store/high-throughput-enabled"
)["ServiceSetting"]["SettingValue"]

base = "/story/app"
for i in range(25):
    ssm.put_parameter(Name=f"{base}/config/key{i:02}", Value=f"value-{i}", Type="String")
ssm.put_parameter(Name=f"{base}/db/password", Value="s3cr3t!", Type="SecureString")
ssm.put_parameter(
    Name=f"{base}/db/hosts", Value="a.example,b.example", Type="StringList",
    Tags=[{"Key": "team", "Value": "data"}],
)

paginator = ssm.get_paginator("get_parameters_by_path")
pages = list(paginator.paginate(Path=base, Recursive=True, WithDecryption=True))
params = [p for page in pages for p in page["Parameters"]]
out["by_path_pages"] = len(pages)
out["by_path_count"] = len(params)
out["password"] = next(p["Value"] for p in params if p["Name"].endswith("/db/password"))
one_level = [p["Name"] for page in paginator.paginate(Path=f"{base}/db") for p in page["Parameters"]]
out["one_level"] = sorted(one_level)
hidden = ssm.get_parameter(Name=f"{base}/db/password")["Parameter"]["Value"]
out["hidden_is_not_plaintext"] = hidden != "s3cr3t!"

# Versions, labels, selectors, history.
name = f"{base}/feature"
for v in ["off", "on", "canary"]:
    ssm.put_parameter(Name=name, Value=v, Type="String", Overwrite=True)
ssm.label_parameter_version(Name=name, ParameterVersion=2, Labels=["stable"])
out["by_label"] = ssm.get_parameter(Name=f"{name}:stable")["Parameter"]["Value"]
out["by_version"] = ssm.get_parameter(Name=f"{name}:1")["Parameter"]["Value"]
history = [
    h
    for page in ssm.get_paginator("get_parameter_history").paginate(Name=name, PaginationConfig={"PageSize": 1})
    for h in page["Parameters"]
]
out["history"] = [(h["Version"], h["Value"], h.get("Labels", [])) for h in history]
out["version_not_found"] = error(ssm.get_parameter, Name=f"{name}:101")

got = ssm.get_parameters(Names=[f"{base}/config/key00", f"{base}/nope", f"{name}:stable"])
out["get_parameters"] = {
    "found": sorted(p["Name"] for p in got["Parameters"]),
    "invalid": got["InvalidParameters"],
}

described = [
    p["Name"]
    for page in ssm.get_paginator("describe_parameters").paginate(
        ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [base]}],
        PaginationConfig={"PageSize": 7},
    )
    for p in page["Parameters"]
]
out["described"] = len(described)
out["described_secure"] = [
    (p["Name"], p["KeyId"])
    for p in ssm.describe_parameters(
        ParameterFilters=[{"Key": "Type", "Values": ["SecureString"]}]
    )["Parameters"]
]
out["tags"] = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=f"{base}/db/hosts")["TagList"]

deleted = ssm.delete_parameters(Names=[f"{base}/config/key00", f"{base}/config/missing"])
out["deleted"] = {"deleted": deleted["DeletedParameters"], "invalid": deleted["InvalidParameters"]}
out["delete_missing"] = error(ssm.delete_parameter, Name=f"{base}/config/key00")

# Errors applications handle.
out["exists"] = error(ssm.put_parameter, Name=name, Value="x", Type="String")
out["too_big"] = error(ssm.put_parameter, Name="/story/big", Value="x" * 4097, Type="String")
out["reserved"] = error(ssm.put_parameter, Name="awsy", Value="x", Type="String")

# Another account at standard throughput (40 TPS): a concurrent burst is throttled.
other = client("444455556666")
other.put_parameter(Name="/burst", Value="x", Type="String")


def one_get(_):
    try:
        other.get_parameter(Name="/burst")
        return None
    except botocore.exceptions.ClientError as e:
        return {"code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"]}


with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
    results = list(pool.map(one_get, range(300)))
errors = [r for r in results if r is not None]
out["throttled"] = errors[0] if errors else None
out["throttled_all_same"] = all(r == errors[0] for r in errors) if errors else None
out["burst_succeeded"] = sum(1 for r in results if r is None)

print(json.dumps(out))
