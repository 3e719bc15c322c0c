#!/usr/bin/env python3
"""Regenerates tests/fixtures/botocore.json: requests signed by botocore's own SigV4 signers.

The Rust test (tests/botocore.rs) only reads the committed JSON, so Python is needed only to
refresh the fixtures:  python3 crates/sigv4/tests/gen_botocore.py

Every request is signed at a fixed instant so the output is reproducible. Each case records the
request exactly as a server would receive it: the path and query as they appear on the wire
(still percent-encoded), the headers the HTTP client sends (including Host, which botocore signs
but leaves for the HTTP layer to add), and the body.
"""
import datetime
import hashlib
import json
import os

import botocore
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.compat import urlsplit

SIGNED_AT = datetime.datetime(2024, 5, 17, 9, 30, 12, tzinfo=datetime.timezone.utc)
# The verifier runs a little later than the signer, as a real server would.
VERIFIED_AT = SIGNED_AT + datetime.timedelta(seconds=7)

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = (
    "FwoGZXIvYXdzEBYaDExampleSessionTokenValue//////////"
    "wEaDHc0bW9rZW5zZXNzaW9uIiQ2ZTg1Y2Y5Yy1mYzg3LTQxNjAtOWY0OS0zYWM1YjQ5ZmU4YTE="
)

botocore.auth.get_current_datetime = lambda: SIGNED_AT.replace(tzinfo=None)


def wire(request, *, host_header=True, extra_headers=()):
    parts = urlsplit(request.url)
    headers = []
    if host_header:
        headers.append(["Host", parts.netloc])
    for name, value in request.headers.items():
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        headers.append([name, value])
    headers.extend([list(h) for h in extra_headers])
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return {
        "method": request.method,
        "path": parts.path or "/",
        "query": parts.query,
        "headers": headers,
        "body": body.decode("utf-8"),
    }


def header_signed(method, url, headers, body, service, region, token=None):
    creds = Credentials(ACCESS_KEY, SECRET, token)
    request = AWSRequest(method=method, url=url, headers=headers, data=body)
    botocore.auth.SigV4Auth(creds, service, region).add_auth(request)
    return request


def query_signed(method, url, service, region, expires, token=None):
    creds = Credentials(ACCESS_KEY, SECRET, token)
    request = AWSRequest(method=method, url=url, headers={})
    botocore.auth.SigV4QueryAuth(creds, service, region, expires=expires).add_auth(request)
    return request


def case(name, description, request_wire, service, region, *, valid=True, secret=SECRET,
         verified_at=VERIFIED_AT, error_code=None):
    out = {
        "name": name,
        "description": description,
        "service": service,
        "region": region,
        "access_key_id": ACCESS_KEY,
        "secret": secret,
        "now": verified_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "valid": valid,
    }
    if error_code:
        out["json_error_code"] = error_code[0]
        out["query_error_code"] = error_code[1]
    out.update(request_wire)
    return out


def main():
    cases = []

    kms_body = json.dumps({"KeyId": "alias/app", "Plaintext": "aGVsbG8gd29ybGQ="})
    kms_headers = {
        "X-Amz-Target": "TrentService.Encrypt",
        "Content-Type": "application/x-amz-json-1.1",
        "User-Agent": "Boto3/1.38 md/Botocore#1.43.11 ua/2.1 os/linux",
    }
    kms = header_signed("POST", "https://kms.us-east-1.amazonaws.com/", dict(kms_headers), kms_body,
                        "kms", "us-east-1")
    cases.append(case("kms-encrypt", "awsJson1.1 POST with X-Amz-Target; the unsigned User-Agent is "
                      "present on the wire as botocore sends it", wire(kms), "kms", "us-east-1"))
    cases.append(case("kms-encrypt-wrong-secret", "the same request checked against another secret",
                      wire(kms), "kms", "us-east-1", valid=False,
                      secret="AnotherSecretKeyThatIsNotTheRightOne0000",
                      error_code=("InvalidSignatureException", "SignatureDoesNotMatch")))

    kms_tok = header_signed("POST", "https://kms.eu-west-1.amazonaws.com/", dict(kms_headers),
                            json.dumps({"KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab"}),
                            "kms", "eu-west-1", token=SESSION_TOKEN)
    cases.append(case("kms-describe-key-session-token", "temporary credentials: X-Amz-Security-Token "
                      "is sent and signed", wire(kms_tok), "kms", "eu-west-1"))

    sts_body = "Action=GetCallerIdentity&Version=2011-06-15"
    sts = header_signed("POST", "https://sts.amazonaws.com/",
                        {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
                        sts_body, "sts", "us-east-1")
    cases.append(case("sts-get-caller-identity", "awsQuery form POST", wire(sts), "sts", "us-east-1"))

    secrets_body = json.dumps({"SecretId": "prod/db/password", "VersionStage": "AWSCURRENT"})
    sm = header_signed("POST", "https://secretsmanager.us-west-2.amazonaws.com/",
                       {"X-Amz-Target": "secretsmanager.GetSecretValue",
                        "Content-Type": "application/x-amz-json-1.1",
                        "Date": "placeholder"},
                       secrets_body, "secretsmanager", "us-west-2")
    cases.append(case("secretsmanager-date-header", "the signing time travels in the Date header "
                      "(botocore writes it as RFC 2822 with -0000) instead of X-Amz-Date",
                      wire(sm), "secretsmanager", "us-west-2"))

    body = json.dumps({"NumberOfBytes": 32})
    sha = header_signed("POST", "https://kms.us-east-1.amazonaws.com/",
                        {"X-Amz-Target": "TrentService.GenerateRandom",
                         "Content-Type": "application/x-amz-json-1.1",
                         "X-Amz-Content-SHA256": hashlib.sha256(body.encode()).hexdigest()},
                        body, "kms", "us-east-1")
    cases.append(case("kms-content-sha256-header", "x-amz-content-sha256 carries the body hash and "
                      "is signed", wire(sha), "kms", "us-east-1"))

    path = header_signed("GET", "https://api.example.com/a%20b/c%2Fd/%E1%88%B4/./e/../f//g"
                         "?z=%E1%88%B4&y=a%20b&x=1&x=0&empty=&flag&plus=%2B",
                         {}, None, "execute-api", "ap-southeast-2")
    cases.append(case("encoded-path-and-query", "percent-encoded path segments (double-encoded in "
                      "the canonical request), dot segments, duplicate slashes, repeated, empty and "
                      "valueless query parameters", wire(path), "execute-api", "ap-southeast-2"))

    pre = query_signed("GET", "https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
                       "sts", "us-east-1", 900)
    cases.append(case("sts-presigned-get-caller-identity", "SigV4QueryAuth presigned URL "
                      "(UNSIGNED-PAYLOAD), as `aws eks get-token` builds it", wire(pre), "sts",
                      "us-east-1"))
    cases.append(case("sts-presigned-expired", "the same URL used after its 900 s expired",
                      wire(pre), "sts", "us-east-1", valid=False,
                      verified_at=SIGNED_AT + datetime.timedelta(seconds=901),
                      error_code=("InvalidSignatureException", "SignatureDoesNotMatch")))

    pre_tok = query_signed("GET", "https://kms.us-east-1.amazonaws.com/?Action=ListKeys",
                           "kms", "us-east-1", 3600, token=SESSION_TOKEN)
    cases.append(case("presigned-session-token", "presigned URL with X-Amz-Security-Token and a one "
                      "hour expiry, used 50 minutes later", wire(pre_tok), "kms", "us-east-1",
                      verified_at=SIGNED_AT + datetime.timedelta(minutes=50)))

    out = {
        "generator": "crates/sigv4/tests/gen_botocore.py",
        "botocore_version": botocore.__version__,
        "signed_at": SIGNED_AT.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cases": cases,
    }
    target = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "botocore.json")
    with open(target, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {target}")


if __name__ == "__main__":
    main()
