"""boto3 against Citadel KMS: envelope encryption the way applications do it, tags, aliases,
policies, rotation and deletion, plus botocore's own paginators over ListKeys/ListAliases.
Prints a JSON summary for the Rust test to assert on; any unexpected failure raises.

Environment: CITADEL_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
"""

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
kms = session.client("kms", endpoint_url=os.environ["CITADEL_URL"], config=config)
out = {}

created = kms.create_key(
    Description="boto3 story",
    Tags=[{"TagKey": "team", "TagValue": "platform"}, {"TagKey": "env", "TagValue": "test"}],
)["KeyMetadata"]
key = created["KeyId"]
out["metadata"] = {k: v for k, v in created.items() if k != "CreationDate"}
out["creation_date_is_datetime"] = hasattr(created["CreationDate"], "year")
dest = kms.create_key(Description="destination")["KeyMetadata"]["KeyId"]
kms.create_alias(AliasName="alias/story", TargetKeyId=key)

# Envelope encryption: a data key for local use, stored only encrypted.
ctx = {"tenant": "acme", "purpose": "backup"}
dk = kms.generate_data_key(KeyId="alias/story", KeySpec="AES_256", EncryptionContext=ctx)
out["data_key_len"] = len(dk["Plaintext"])
back = kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext=ctx)
out["data_key_round_trip"] = back["Plaintext"] == dk["Plaintext"]
out["decrypt_key_id"] = back["KeyId"]
wo = kms.generate_data_key_without_plaintext(KeyId=key, NumberOfBytes=64, EncryptionContext=ctx)
out["without_plaintext_has_plaintext"] = "Plaintext" in wo
out["without_plaintext_len"] = len(
    kms.decrypt(CiphertextBlob=wo["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"]
)

# ReEncrypt moves the data key to another KMS key without revealing it.
re = kms.re_encrypt(
    CiphertextBlob=dk["CiphertextBlob"],
    SourceEncryptionContext=ctx,
    DestinationKeyId=dest,
    DestinationEncryptionContext={"moved": "yes"},
)
out["re_encrypt_source"] = re["SourceKeyId"]
out["re_encrypt_dest"] = re["KeyId"]
moved = kms.decrypt(CiphertextBlob=re["CiphertextBlob"], EncryptionContext={"moved": "yes"})
out["re_encrypt_round_trip"] = moved["Plaintext"] == dk["Plaintext"]

# Tags and the policy.
kms.tag_resource(KeyId=key, Tags=[{"TagKey": "owner", "TagValue": "alice"}])
kms.untag_resource(KeyId=key, TagKeys=["env"])
out["tags"] = kms.list_resource_tags(KeyId=key)["Tags"]
out["policy_names"] = kms.list_key_policies(KeyId=key)["PolicyNames"]
policy = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
out["default_policy_principal"] = policy["Statement"][0]["Principal"]["AWS"]
kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))

# Rotation.
kms.enable_key_rotation(KeyId=key, RotationPeriodInDays=180)
status = kms.get_key_rotation_status(KeyId=key)
out["rotation_enabled"] = status["KeyRotationEnabled"]
out["rotation_period"] = status["RotationPeriodInDays"]
kms.rotate_key_on_demand(KeyId=key)
kms.rotate_key_on_demand(KeyId=key)
out["rotations"] = [
    r["RotationType"] for r in kms.list_key_rotations(KeyId=key)["Rotations"]
]
after = kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext=ctx)
out["old_data_key_after_rotation"] = after["Plaintext"] == dk["Plaintext"]

# botocore's paginators follow NextMarker/Truncated.
for i in range(4):
    kms.create_alias(AliasName=f"alias/page-{i}", TargetKeyId=dest)
keys = [k["KeyId"] for p in kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 1}) for k in p["Keys"]]
out["listed_keys"] = sorted(keys) == sorted([key, dest])
aliases = [
    a["AliasName"]
    for p in kms.get_paginator("list_aliases").paginate(PaginationConfig={"PageSize": 2})
    for a in p["Aliases"]
]
out["aliases"] = aliases
out["aliases_of_key"] = [a["AliasName"] for a in kms.list_aliases(KeyId=key)["Aliases"]]

# Deletion.
scheduled = kms.schedule_key_deletion(KeyId=dest, PendingWindowInDays=7)
out["scheduled_state"] = scheduled["KeyState"]
out["scheduled_window"] = scheduled["PendingWindowInDays"]
try:
    kms.decrypt(CiphertextBlob=re["CiphertextBlob"], EncryptionContext={"moved": "yes"})
    out["decrypt_pending_deletion"] = "ok"
except botocore.exceptions.ClientError as e:
    out["decrypt_pending_deletion"] = e.response["Error"]["Code"]
kms.cancel_key_deletion(KeyId=dest)
out["after_cancel"] = kms.describe_key(KeyId=dest)["KeyMetadata"]["KeyState"]
print(json.dumps(out, default=str))
