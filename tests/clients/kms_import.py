"""boto3 against Citadel KMS imported key material (BYOK): an EXTERNAL key gets 256-bit material
wrapped with RSAES_OAEP_SHA_256 by `openssl pkeyutl` (AWS's documented procedure), encrypts and
decrypts, loses its material with DeleteImportedKeyMaterial (PendingImport), takes the same
material back (the old ciphertext decrypts again), refuses other material, and an expiring import
shows ValidTo. Prints a JSON summary for the Rust test to assert on; any unexpected failure raises.

Environment: CITADEL_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
"""

import datetime
import json
import os
import subprocess
import tempfile

import boto3
import botocore.exceptions
from botocore.config import Config

kms = boto3.session.Session(
    aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    region_name="us-east-1",
).client("kms", endpoint_url=os.environ["CITADEL_URL"], config=Config(retries={"max_attempts": 1}))
work = tempfile.mkdtemp()
out = {}


def error(call, **kwargs):
    try:
        call(**kwargs)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError(f"{call.__name__} unexpectedly succeeded")


def wrap(material, key_id):
    """Wrapping key and token from Citadel, wrapped material from openssl."""
    params = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    public = os.path.join(work, "wrapping.der")
    plain = os.path.join(work, "material.bin")
    wrapped = os.path.join(work, "wrapped.bin")
    with open(public, "wb") as f:
        f.write(params["PublicKey"])
    with open(plain, "wb") as f:
        f.write(material)
    subprocess.run(
        ["openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", public, "-keyform", "DER",
         "-in", plain, "-out", wrapped, "-pkeyopt", "rsa_padding_mode:oaep",
         "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"],
        check=True,
    )
    with open(wrapped, "rb") as f:
        return params["ImportToken"], f.read()


key = kms.create_key(Origin="EXTERNAL", Description="byok")["KeyMetadata"]
key_id = key["KeyId"]
out["created_state"] = key["KeyState"]
out["origin"] = key["Origin"]
out["encrypt_before_import"] = error(kms.encrypt, KeyId=key_id, Plaintext=b"x")

material = os.urandom(32)
token, wrapped = wrap(material, key_id)
imported = kms.import_key_material(
    KeyId=key_id,
    ImportToken=token,
    EncryptedKeyMaterial=wrapped,
    ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
)
out["material_id_len"] = len(imported.get("KeyMaterialId", ""))
out["state_after_import"] = kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]
blob = kms.encrypt(KeyId=key_id, Plaintext=b"bring your own key")["CiphertextBlob"]
out["decrypted"] = kms.decrypt(CiphertextBlob=blob)["Plaintext"].decode()

kms.delete_imported_key_material(KeyId=key_id)
out["state_after_delete"] = kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]
out["decrypt_after_delete"] = error(kms.decrypt, CiphertextBlob=blob)

token, wrapped = wrap(os.urandom(32), key_id)
out["other_material"] = error(
    kms.import_key_material,
    KeyId=key_id,
    ImportToken=token,
    EncryptedKeyMaterial=wrapped,
    ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
)
token, wrapped = wrap(material, key_id)
valid_to = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
kms.import_key_material(
    KeyId=key_id,
    ImportToken=token,
    EncryptedKeyMaterial=wrapped,
    ExpirationModel="KEY_MATERIAL_EXPIRES",
    ValidTo=valid_to,
)
meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
out["state_after_reimport"] = meta["KeyState"]
out["expiration_model"] = meta.get("ExpirationModel")
out["valid_to_days"] = round((meta["ValidTo"] - datetime.datetime.now(datetime.timezone.utc)).days)
out["decrypted_again"] = kms.decrypt(CiphertextBlob=blob)["Plaintext"].decode()
out["wrong_token"] = error(
    kms.import_key_material,
    KeyId=kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"],
    ImportToken=token,
    EncryptedKeyMaterial=wrapped,
    ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
)
print(json.dumps(out))
