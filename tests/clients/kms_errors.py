"""boto3 against Citadel KMS: the issue's bad-input list, each sent for real (client-side
parameter validation is off, so the server has to answer), printed as JSON
{case: {"code", "message", "status"} | {"ok": true}} for the Rust test to assert on.

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
config = Config(retries={"max_attempts": 1, "mode": "standard"}, parameter_validation=False)
kms = session.client("kms", endpoint_url=os.environ["CITADEL_URL"], config=config)


def attempt(fn, **kwargs):
    try:
        fn(**kwargs)
        return {"ok": True}
    except botocore.exceptions.ClientError as e:
        return {
            "code": e.response["Error"]["Code"],
            "message": e.response["Error"].get("Message", ""),
            "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
        }


key = kms.create_key(Description="errors")["KeyMetadata"]["KeyId"]
other = kms.create_key()["KeyMetadata"]["KeyId"]
disabled = kms.create_key()["KeyMetadata"]["KeyId"]
kms.create_alias(AliasName="alias/points-to-disabled", TargetKeyId=disabled)
kms.disable_key(KeyId=disabled)
blob = kms.encrypt(KeyId=key, Plaintext=b"payload", EncryptionContext={"Purpose": "Test"})[
    "CiphertextBlob"
]

out = {"key": key, "other": other, "disabled": disabled}
out["plaintext_4096"] = attempt(kms.encrypt, KeyId=key, Plaintext=b"a" * 4096)
out["plaintext_4097"] = attempt(kms.encrypt, KeyId=key, Plaintext=b"a" * 4097)
out["data_key_bytes_0"] = attempt(kms.generate_data_key, KeyId=key, NumberOfBytes=0)
out["data_key_bytes_1025"] = attempt(kms.generate_data_key, KeyId=key, NumberOfBytes=1025)
out["data_key_spec_and_bytes"] = attempt(
    kms.generate_data_key, KeyId=key, KeySpec="AES_256", NumberOfBytes=32
)
out["data_key_neither"] = attempt(kms.generate_data_key_without_plaintext, KeyId=key)
out["random_0"] = attempt(kms.generate_random, NumberOfBytes=0)
out["random_1025"] = attempt(kms.generate_random, NumberOfBytes=1025)
out["unknown_alias"] = attempt(kms.encrypt, KeyId="alias/does-not-exist", Plaintext=b"x")
out["unknown_key"] = attempt(
    kms.describe_key, KeyId="00000000-0000-4000-8000-000000000000"
)
out["invalid_key_id"] = attempt(kms.describe_key, KeyId="fake-key-id")
out["alias_to_disabled"] = attempt(kms.encrypt, KeyId="alias/points-to-disabled", Plaintext=b"x")
out["context_differs_by_case"] = attempt(
    kms.decrypt, CiphertextBlob=blob, EncryptionContext={"purpose": "Test"}
)
out["context_missing"] = attempt(kms.decrypt, CiphertextBlob=blob)
out["grant_tokens_11"] = attempt(
    kms.encrypt, KeyId=key, Plaintext=b"x", GrantTokens=[f"token{i}" for i in range(11)]
)
out["unknown_grant_token"] = attempt(
    kms.encrypt, KeyId=key, Plaintext=b"x", GrantTokens=["not-a-grant-token"]
)
out["policy_over_32k"] = attempt(
    kms.put_key_policy,
    KeyId=key,
    PolicyName="default",
    Policy=json.dumps({"Version": "2012-10-17", "Statement": [], "Pad": "x" * 33000}),
)
out["policy_not_json"] = attempt(
    kms.put_key_policy, KeyId=key, PolicyName="default", Policy="this is not json"
)
out["pending_window_6"] = attempt(kms.schedule_key_deletion, KeyId=key, PendingWindowInDays=6)
out["pending_window_31"] = attempt(kms.schedule_key_deletion, KeyId=key, PendingWindowInDays=31)
out["truncated_ciphertext"] = attempt(
    kms.decrypt, CiphertextBlob=blob[:-1], EncryptionContext={"Purpose": "Test"}
)
out["flipped_ciphertext"] = attempt(
    kms.decrypt,
    CiphertextBlob=blob[:40] + bytes([blob[40] ^ 1]) + blob[41:],
    EncryptionContext={"Purpose": "Test"},
)
out["decrypt_with_other_key"] = attempt(
    kms.decrypt, CiphertextBlob=blob, KeyId=other, EncryptionContext={"Purpose": "Test"}
)
out["reserved_alias"] = attempt(kms.create_alias, AliasName="alias/aws/mine", TargetKeyId=key)
out["alias_without_prefix"] = attempt(kms.create_alias, AliasName="mine", TargetKeyId=key)
out["alias_with_colon"] = attempt(kms.create_alias, AliasName="alias/a:b", TargetKeyId=key)
kms.create_alias(AliasName="alias/taken", TargetKeyId=key)
out["alias_exists"] = attempt(kms.create_alias, AliasName="alias/taken", TargetKeyId=other)
out["alias_to_alias"] = attempt(kms.create_alias, AliasName="alias/x", TargetKeyId="alias/taken")
out["delete_unknown_alias"] = attempt(kms.delete_alias, AliasName="alias/never")
out["tag_reserved"] = attempt(kms.tag_resource, KeyId=key, Tags=[{"TagKey": "aws:x", "TagValue": "1"}])
out["tag_duplicate"] = attempt(
    kms.tag_resource,
    KeyId=key,
    Tags=[{"TagKey": "a", "TagValue": "1"}, {"TagKey": "a", "TagValue": "2"}],
)
out["rotation_period_89"] = attempt(kms.enable_key_rotation, KeyId=key, RotationPeriodInDays=89)
out["china_only_key_spec"] = attempt(kms.create_key, KeySpec="SM2", KeyUsage="SIGN_VERIFY")
out["cancel_not_pending"] = attempt(kms.cancel_key_deletion, KeyId=key)
out["dry_run"] = attempt(kms.encrypt, KeyId=key, Plaintext=b"x", DryRun=True)
for _ in range(25):
    kms.rotate_key_on_demand(KeyId=key)
out["on_demand_26"] = attempt(kms.rotate_key_on_demand, KeyId=key)
# Ciphertexts made before 25 rotations still decrypt.
out["old_blob_after_rotations"] = attempt(
    kms.decrypt, CiphertextBlob=blob, EncryptionContext={"Purpose": "Test"}
)
kms.schedule_key_deletion(KeyId=disabled, PendingWindowInDays=7)
out["create_alias_pending_deletion"] = attempt(
    kms.create_alias, AliasName="alias/late", TargetKeyId=disabled
)
out["enable_pending_deletion"] = attempt(kms.enable_key, KeyId=disabled)
print(json.dumps(out))
