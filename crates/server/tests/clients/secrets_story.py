"""Secrets Manager through boto3: idempotent ClientRequestTokens, binary values, batch reads,
paginators, random passwords, resource policies and AWS's error codes. Endpoint and
credentials come from the environment (CITADEL_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
Prints OK when every check passed."""
import json
import os
import uuid

import boto3
from botocore.exceptions import ClientError

sm = boto3.client("secretsmanager", endpoint_url=os.environ["CITADEL_URL"], region_name="us-east-1")


def code(fn, **kwargs):
    try:
        fn(**kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"]["Message"]
    raise AssertionError("expected an error from %s" % fn.__name__)


token = str(uuid.uuid4())
created = sm.create_secret(Name="py/app", SecretString="one", ClientRequestToken=token)
assert created["VersionId"] == token
# An SDK retry of the same request is answered the same way.
again = sm.create_secret(Name="py/app", SecretString="one", ClientRequestToken=token)
assert again["ARN"] == created["ARN"]

t2 = str(uuid.uuid4())
sm.put_secret_value(SecretId="py/app", SecretString="two", ClientRequestToken=t2)
sm.put_secret_value(SecretId="py/app", SecretString="two", ClientRequestToken=t2)
c, m = code(sm.put_secret_value, SecretId="py/app", SecretString="three", ClientRequestToken=t2)
assert c == "ResourceExistsException", c
assert m == "You can't modify an existing version, you can only create a new version.", m
assert sm.get_secret_value(SecretId="py/app")["SecretString"] == "two"
assert sm.get_secret_value(SecretId="py/app", VersionStage="AWSPREVIOUS")["SecretString"] == "one"

# Binary values come back as bytes.
sm.create_secret(Name="py/bin", SecretBinary=b"\x00\x01\xfe\xff")
assert sm.get_secret_value(SecretId="py/bin")["SecretBinary"] == b"\x00\x01\xfe\xff"

# Paginators and batch reads.
for i in range(5):
    sm.create_secret(Name="py/many/%d" % i, SecretString="v%d" % i)
pages = sm.get_paginator("list_secrets").paginate(
    Filters=[{"Key": "name", "Values": ["py/many/"]}], PaginationConfig={"PageSize": 2}
)
names = [s["Name"] for p in pages for s in p["SecretList"]]
assert names == ["py/many/%d" % i for i in range(5)], names
batch = sm.batch_get_secret_value(SecretIdList=["py/many/0", "py/many/4", "py/none"])
assert sorted(v["SecretString"] for v in batch["SecretValues"]) == ["v0", "v4"]
assert batch["Errors"][0]["ErrorCode"] == "ResourceNotFoundException"

pw = sm.get_random_password(PasswordLength=64, ExcludePunctuation=True, IncludeSpace=True)["RandomPassword"]
assert len(pw) == 64

versions = sm.list_secret_version_ids(SecretId="py/app", IncludeDeprecated=True)["Versions"]
assert len(versions) == 2

# Resource policies.
public = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]})
c, _ = code(sm.put_resource_policy, SecretId="py/app", ResourcePolicy=public, BlockPublicPolicy=True)
assert c == "PublicPolicyException", c
assert sm.validate_resource_policy(ResourcePolicy=public)["PolicyValidationPassed"] is False
sm.put_resource_policy(SecretId="py/app", ResourcePolicy=public)
assert sm.get_resource_policy(SecretId="py/app")["ResourcePolicy"] == public
sm.delete_resource_policy(SecretId="py/app")
assert "ResourcePolicy" not in sm.get_resource_policy(SecretId="py/app")

# Errors.
c, m = code(sm.describe_secret, SecretId="py/missing")
assert (c, m) == ("ResourceNotFoundException", "Secrets Manager can't find the specified secret."), (c, m)
c, _ = code(sm.create_secret, Name="py/both", SecretString="x", SecretBinary=b"x")
assert c == "InvalidParameterException", c
c, _ = code(sm.delete_secret, SecretId="py/app", RecoveryWindowInDays=31)
assert c == "InvalidParameterException", c
c, m = code(sm.rotate_secret, SecretId="py/app")
assert (c, m) == ("InvalidRequestException", "No Lambda rotation function ARN is associated with this secret."), (c, m)

sm.delete_secret(SecretId="py/app", RecoveryWindowInDays=7)
c, m = code(sm.get_secret_value, SecretId="py/app")
assert c == "InvalidRequestException", c
sm.restore_secret(SecretId="py/app")
assert sm.get_secret_value(SecretId="py/app")["SecretString"] == "two"
print("OK")
