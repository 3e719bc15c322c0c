"""boto3 against Citadel KMS multi-Region keys: two clients of one endpoint in two Regions.
A primary in us-east-1 is replicated to eu-west-1; ciphertexts cross Regions both ways, rotation
follows the primary, per-Region properties stay apart, the primary Region moves, and deleting
the primary waits for its replica. Prints a JSON summary for the Rust test to assert on; any
unexpected failure raises.

Environment: CITADEL_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
"""

import json
import os

import boto3
import botocore.exceptions
from botocore.config import Config

config = Config(retries={"max_attempts": 1, "mode": "standard"})


def client(region):
    session = boto3.session.Session(
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
    )
    return session.client("kms", endpoint_url=os.environ["CITADEL_URL"], config=config)


us = client("us-east-1")
eu = client("eu-west-1")
out = {}


def error(call, **kwargs):
    try:
        call(**kwargs)
    except botocore.exceptions.ClientError as e:
        return {"code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"]}
    raise AssertionError(f"{call.__name__} unexpectedly succeeded")


def config_of(metadata):
    c = metadata["MultiRegionConfiguration"]
    return {
        "type": c["MultiRegionKeyType"],
        "primary": c["PrimaryKey"]["Region"],
        "primary_arn": c["PrimaryKey"]["Arn"],
        "replicas": sorted(r["Region"] for r in c["ReplicaKeys"]),
    }


primary = us.create_key(
    MultiRegion=True,
    Description="primary",
    Tags=[{"TagKey": "site", "TagValue": "us"}],
)["KeyMetadata"]
key = primary["KeyId"]
out["key_id"] = key
out["primary_multi_region"] = primary["MultiRegion"]
out["primary_config"] = config_of(primary)

replica = us.replicate_key(
    KeyId=key,
    ReplicaRegion="eu-west-1",
    Description="replica",
    Tags=[{"TagKey": "site", "TagValue": "eu"}],
)
out["replica_arn"] = replica["ReplicaKeyMetadata"]["Arn"]
out["replica_state"] = replica["ReplicaKeyMetadata"]["KeyState"]
out["replica_config"] = config_of(replica["ReplicaKeyMetadata"])
out["replica_tags"] = replica["ReplicaTags"]
out["replica_policy_id"] = json.loads(replica["ReplicaPolicy"])["Id"]
out["describe_us"] = config_of(us.describe_key(KeyId=key)["KeyMetadata"])
out["describe_eu"] = config_of(eu.describe_key(KeyId=key)["KeyMetadata"])

# Encrypt in one Region, decrypt in the other (without KeyId, and with the replica's ARN).
blob = us.encrypt(KeyId=key, Plaintext=b"from us-east-1")["CiphertextBlob"]
out["eu_decrypts_us"] = eu.decrypt(CiphertextBlob=blob)["Plaintext"].decode()
got = eu.decrypt(CiphertextBlob=blob, KeyId=out["replica_arn"])
out["eu_decrypt_key_id"] = got["KeyId"]

# Per-Region properties.
eu.create_alias(AliasName="alias/eu-app", TargetKeyId=key)
out["alias_in_us"] = error(us.describe_key, KeyId="alias/eu-app")["code"]
out["tags_us"] = us.list_resource_tags(KeyId=key)["Tags"]
out["tags_eu"] = eu.list_resource_tags(KeyId=key)["Tags"]
out["description_us"] = us.describe_key(KeyId=key)["KeyMetadata"]["Description"]
out["description_eu"] = eu.describe_key(KeyId="alias/eu-app")["KeyMetadata"]["Description"]
eu.disable_key(KeyId=key)
out["state_after_eu_disable"] = [
    us.describe_key(KeyId=key)["KeyMetadata"]["KeyState"],
    eu.describe_key(KeyId=key)["KeyMetadata"]["KeyState"],
]
eu.enable_key(KeyId=key)

# Rotation belongs to the primary.
out["replica_enable_rotation"] = error(eu.enable_key_rotation, KeyId=key)
us.rotate_key_on_demand(KeyId=key)
out["material_ids_match"] = (
    us.describe_key(KeyId=key)["KeyMetadata"]["CurrentKeyMaterialId"]
    == eu.describe_key(KeyId=key)["KeyMetadata"]["CurrentKeyMaterialId"]
)
blob = eu.encrypt(KeyId=key, Plaintext=b"after rotation")["CiphertextBlob"]
out["us_decrypts_eu_after_rotation"] = us.decrypt(CiphertextBlob=blob)["Plaintext"].decode()

out["replicate_again"] = error(us.replicate_key, KeyId=key, ReplicaRegion="eu-west-1")["code"]
out["replicate_replica"] = error(eu.replicate_key, KeyId=key, ReplicaRegion="ap-south-1")

# The primary Region moves to eu-west-1.
us.update_primary_region(KeyId=key, PrimaryRegion="eu-west-1")
out["after_update_us"] = config_of(us.describe_key(KeyId=key)["KeyMetadata"])
out["after_update_eu"] = config_of(eu.describe_key(KeyId=key)["KeyMetadata"])
eu.update_primary_region(KeyId=key, PrimaryRegion="us-east-1")

# The primary waits for its replica.
deletion = us.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
out["primary_deletion_state"] = deletion["KeyState"]
out["primary_deletion_date"] = "DeletionDate" in deletion
described = us.describe_key(KeyId=key)["KeyMetadata"]
out["primary_window"] = described.get("PendingDeletionWindowInDays")
out["replica_deletion_state"] = eu.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)[
    "KeyState"
]
us.cancel_key_deletion(KeyId=key)
out["state_after_cancel"] = us.describe_key(KeyId=key)["KeyMetadata"]["KeyState"]

print(json.dumps(out))
