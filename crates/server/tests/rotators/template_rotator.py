#!/usr/bin/env python3
"""A rotation function shaped like AWS's SecretsManagerRotationTemplate (the four steps, the
same idempotency checks, boto3 against SECRETS_MANAGER_ENDPOINT), run by Citadel's `command`
rotator: the Lambda event arrives on stdin, a non-zero exit fails the step.

Test hooks (environment): ROTATOR_LOG (append each step), ROTATOR_FAIL_STEP (raise in that
step), ROTATOR_GARBAGE_STEP (print a non-JSON answer), ROTATOR_SLEEP_STEP with
ROTATOR_SLEEP_MARKER (the first time that step runs: create the marker and sleep
ROTATOR_SLEEP_SECONDS, default 20).
"""
import json
import os
import sys
import time

import boto3


def lambda_handler(event, context):
    arn = event["SecretId"]
    token = event["ClientRequestToken"]
    step = event["Step"]

    if os.environ.get("ROTATOR_LOG"):
        with open(os.environ["ROTATOR_LOG"], "a") as f:
            f.write(step + "\n")

    service_client = boto3.client(
        "secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"]
    )

    metadata = service_client.describe_secret(SecretId=arn)
    versions = metadata["VersionIdsToStages"]
    if token not in versions:
        raise ValueError("Secret version %s has no stage for rotation of secret %s." % (token, arn))
    if "AWSCURRENT" in versions[token]:
        return
    elif "AWSPENDING" not in versions[token]:
        raise ValueError("Secret version %s not set as AWSPENDING for rotation of secret %s." % (token, arn))

    if step == os.environ.get("ROTATOR_FAIL_STEP"):
        raise RuntimeError("deliberate failure in %s" % step)
    if step == os.environ.get("ROTATOR_GARBAGE_STEP"):
        print("<html>this is not a Lambda result</html>")
        return
    marker = os.environ.get("ROTATOR_SLEEP_MARKER")
    if step == os.environ.get("ROTATOR_SLEEP_STEP") and marker and not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(int(os.environ.get("ROTATOR_SLEEP_SECONDS", "20")))

    if step == "createSecret":
        create_secret(service_client, arn, token)
    elif step == "setSecret":
        pass
    elif step == "testSecret":
        service_client.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
    elif step == "finishSecret":
        finish_secret(service_client, arn, token)
    else:
        raise ValueError("Invalid step parameter")


def create_secret(service_client, arn, token):
    service_client.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")
    try:
        service_client.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
    except service_client.exceptions.ResourceNotFoundException:
        exclude_characters = os.environ.get("EXCLUDE_CHARACTERS", "/@\"'\\")
        passwd = service_client.get_random_password(ExcludeCharacters=exclude_characters)
        service_client.put_secret_value(
            SecretId=arn,
            ClientRequestToken=token,
            SecretString=passwd["RandomPassword"],
            VersionStages=["AWSPENDING"],
        )


def finish_secret(service_client, arn, token):
    metadata = service_client.describe_secret(SecretId=arn)
    current_version = None
    for version in metadata["VersionIdsToStages"]:
        if "AWSCURRENT" in metadata["VersionIdsToStages"][version]:
            if version == token:
                return
            current_version = version
            break
    service_client.update_secret_version_stage(
        SecretId=arn,
        VersionStage="AWSCURRENT",
        MoveToVersionId=token,
        RemoveFromVersionId=current_version,
    )


if __name__ == "__main__":
    lambda_handler(json.load(sys.stdin), None)
