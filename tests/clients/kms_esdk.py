"""The AWS Encryption SDK for Python, with its KMS master key provider pointed at Citadel:
client-side envelope encryption done by the real library. Prints a JSON summary."""

import json
import os
import sys

import aws_encryption_sdk
import boto3
import botocore.session
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError

url = os.environ["CITADEL_URL"]
# botocore honours AWS_ENDPOINT_URL for every client the SDK creates internally.
os.environ["AWS_ENDPOINT_URL"] = url
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"

kms = boto3.client("kms", region_name="us-east-1", endpoint_url=url)
key_arn = kms.create_key(Description="esdk")["KeyMetadata"]["Arn"]

payload = os.urandom(100_000) if len(sys.argv) < 2 else open(sys.argv[1], "rb").read()
context = {"purpose": "esdk-test", "tenant": "t1"}

client = aws_encryption_sdk.EncryptionSDKClient(
    commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
)
provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
    key_ids=[key_arn], botocore_session=botocore.session.get_session()
)
ciphertext, enc_header = client.encrypt(
    source=payload, key_provider=provider, encryption_context=context
)
plaintext, dec_header = client.decrypt(source=ciphertext, key_provider=provider)

out = {
    "key_arn": key_arn,
    "round_trip": plaintext == payload,
    "ciphertext_differs": ciphertext != payload and payload not in ciphertext,
    "context_kept": all(dec_header.encryption_context.get(k) == v for k, v in context.items()),
    "data_keys": [k.key_provider.key_info.decode() for k in enc_header.encrypted_data_keys],
}

# A flipped byte in the message body is refused by the SDK (authenticated encryption).
tampered = bytearray(ciphertext)
tampered[len(tampered) // 2] ^= 0x01
try:
    client.decrypt(source=bytes(tampered), key_provider=provider)
    out["tamper_detected"] = False
except Exception:  # noqa: BLE001 - the SDK surfaces the AEAD failure as cryptography's InvalidTag
    out["tamper_detected"] = True

# Once the key is disabled, nothing decrypts any more.
kms.disable_key(KeyId=key_arn)
try:
    client.decrypt(source=ciphertext, key_provider=provider)
    out["disabled_key_refused"] = False
except AWSEncryptionSDKClientError:
    out["disabled_key_refused"] = True
print(json.dumps(out))
