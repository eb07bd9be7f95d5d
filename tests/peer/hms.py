"""RFC 9421 peer for tests/httpsig_interop.rs: the `http-message-signatures` package (an
implementation independent of Hortus) signs and verifies on request.

Reads one JSON object on stdin, writes one on stdout:
  {"op": "sign", "method", "url", "headers": [[n, v]...], "body_b64", "private_key_pem",
   "key_id", "created", "covered": [...], "alg": "rsa-v1_5-sha256"}
      -> {"headers": [[n, v]...]}  (the request's headers after signing)
  {"op": "verify", "method", "url", "headers", "body_b64", "public_key_pem"}  (clock: now)
      -> {"ok": true, "covered": [...]} or {"ok": false, "error": "..."}

`python3 tests/peer/hms.py --vector` prints the rsa-v1_5-sha256 vector embedded in
src/httpsig/tests.rs (RFC 9421 test-key-rsa, appendix B.1.1).
"""

import base64
import datetime
import json
import sys

import requests
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from http_message_signatures import HTTPMessageSigner, HTTPMessageVerifier, HTTPSignatureKeyResolver
from http_message_signatures import algorithms

ALGS = {
    "rsa-v1_5-sha256": algorithms.RSA_V1_5_SHA256,
    "rsa-pss-sha512": algorithms.RSA_PSS_SHA512,
    "ed25519": algorithms.ED25519,
}


class Keys(HTTPSignatureKeyResolver):
    def __init__(self, private_pem=None, public_pem=None):
        self.private_pem = private_pem
        self.public_pem = public_pem

    def resolve_private_key(self, key_id):
        return load_pem_private_key(self.private_pem.encode(), password=None)

    def resolve_public_key(self, key_id):
        return load_pem_public_key(self.public_pem.encode())


def request(cmd):
    body = base64.b64decode(cmd.get("body_b64", ""))
    req = requests.Request(cmd["method"], cmd["url"], data=body or None).prepare()
    req.headers.clear()
    for name, value in cmd["headers"]:
        req.headers[name] = value
    return req, body


def sign(cmd):
    req, body = request(cmd)
    has_digest = any(n.lower() == "content-digest" for n, _ in cmd["headers"])
    signer = HTTPMessageSigner(
        signature_algorithm=ALGS[cmd.get("alg", "rsa-v1_5-sha256")],
        key_resolver=Keys(private_pem=cmd["private_key_pem"]),
    )
    signer.sign(
        req,
        key_id=cmd["key_id"],
        created=datetime.datetime.fromtimestamp(cmd["created"], datetime.timezone.utc),
        covered_component_ids=tuple(cmd["covered"]),
        label=cmd.get("label", "sig1"),
        # With a body and no Content-Digest, the library computes the digest and covers it.
        body=None if has_digest else (body or None),
        use_existing_digest=has_digest,
    )
    return {"headers": [[k, v] for k, v in req.headers.items()]}


def verify(cmd):
    req, body = request(cmd)
    alg = cmd.get("alg", "rsa-v1_5-sha256")
    verifier = HTTPMessageVerifier(signature_algorithm=ALGS[alg], key_resolver=Keys(public_pem=cmd["public_key_pem"]))
    try:
        results = verifier.verify(req, max_age=datetime.timedelta(hours=1), body=body)
    except Exception as e:  # noqa: BLE001 - the test wants the reason, whatever it is
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    return {"ok": True, "covered": [list(r.covered_components.keys()) for r in results]}


def vector():
    """A deterministic rsa-v1_5-sha256 signature over the RFC 9421 example request."""
    with open(__file__.rsplit("/", 1)[0] + "/keys/rfc9421-test-key-rsa.key") as fh:
        private = fh.read()
    body = b'{"hello": "world"}'
    digest = "sha-256=:" + base64.b64encode(__import__("hashlib").sha256(body).digest()).decode() + ":"
    cmd = {
        "method": "POST",
        "url": "https://example.com/foo?param=Value&Pet=dog",
        "headers": [
            ["Host", "example.com"],
            ["Date", "Tue, 20 Apr 2021 02:07:55 GMT"],
            ["Content-Type", "application/json"],
            ["Content-Digest", digest],
            ["Content-Length", "18"],
        ],
        "body_b64": base64.b64encode(body).decode(),
        "private_key_pem": private,
        "key_id": "test-key-rsa",
        "created": 1618884473,
        "covered": ["@method", "@target-uri", "@authority", "content-type", "content-digest"],
    }
    return sign(cmd)


def main():
    if sys.argv[1:] == ["--vector"]:
        json.dump(vector(), sys.stdout, indent=1)
        return
    cmd = json.load(sys.stdin)
    out = {"sign": sign, "verify": verify}[cmd["op"]](cmd)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
