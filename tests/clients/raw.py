"""Sends one HTTP request to Citadel, signed by botocore's real SigV4 signer, optionally
tampered with, and prints what came back as JSON: {"status", "headers", "body", "json"}.

Usage: raw.py '<spec json>' with CITADEL_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY set.
Spec keys: method, path, query, headers, body (text), body_size (bytes of 'x' instead of body),
target (X-Amz-Target), content_type, signing_name, region, sign (default true),
secret (sign with this secret instead), skew_seconds (sign at now + skew),
drop_host_from_signature, tamper_body (replace the body after signing), session_token.
"""

import datetime
import http.client
import json
import os
import sys
import urllib.parse

import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


class NoHostSigV4(SigV4Auth):
    def headers_to_sign(self, request):
        headers = super().headers_to_sign(request)
        del headers["host"]
        return headers


def main():
    spec = json.loads(sys.argv[1])
    base = os.environ["CITADEL_URL"]
    method = spec.get("method", "POST")
    path = spec.get("path", "/")
    query = spec.get("query", "")
    url = base + path + (("?" + query) if query else "")
    if "body_size" in spec:
        body = b"x" * int(spec["body_size"])
    else:
        body = spec.get("body", "").encode()
    headers = dict(spec.get("headers", {}))
    if "target" in spec:
        headers["X-Amz-Target"] = spec["target"]
    if "content_type" in spec:
        headers["Content-Type"] = spec["content_type"]

    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    if spec.get("sign", True):
        skew = int(spec.get("skew_seconds", 0))
        if skew:
            real_now = botocore.auth.get_current_datetime
            botocore.auth.get_current_datetime = lambda: real_now() + datetime.timedelta(
                seconds=skew
            )
        secret = spec.get("secret") or os.environ["AWS_SECRET_ACCESS_KEY"]
        creds = Credentials(os.environ["AWS_ACCESS_KEY_ID"], secret, spec.get("session_token"))
        signer_cls = NoHostSigV4 if spec.get("drop_host_from_signature") else SigV4Auth
        signer = signer_cls(creds, spec.get("signing_name", "kms"), spec.get("region", "us-east-1"))
        signer.add_auth(request)
    if "tamper_body" in spec:
        body = spec["tamper_body"].encode()

    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    target = parsed.path + (("?" + parsed.query) if parsed.query else "")
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for k, v in request.headers.items():
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        try:
            conn.send(body)
        except (BrokenPipeError, ConnectionResetError):
            # The server may refuse an oversized body before reading it; its answer still counts.
            pass
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
    except (BrokenPipeError, ConnectionResetError) as e:
        print(json.dumps({"status": 0, "error": str(e)}))
        return
    out = {"status": resp.status, "headers": {k.lower(): v for k, v in resp.getheaders()}, "body": text}
    try:
        out["json"] = json.loads(text)
    except ValueError:
        out["json"] = None
    print(json.dumps(out))


if __name__ == "__main__":
    main()
