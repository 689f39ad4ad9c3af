"""Interop: a Python client using requests-oauthlib performs R1 (POST /broker/connect) against our broker.

Driven by crates/broker/tests/interop_requests_oauthlib.rs. Reads one case as JSON on stdin:

    {"url": "https://127.0.0.1:PORT/broker/connect", "consumer_key", "consumer_secret", "server_url",
     "ca": "/path/to/ca.pem", "signature_method": "HMAC-SHA1" | "HMAC-SHA256",
     "server_url_in_header": bool}

signs it with `requests_oauthlib.OAuth1` (signature in the Authorization header, `server_url` in the
form-encoded body, which OAuth1 signs), sends it over TLS verified against the test CA, and prints

    {"status": int, "content_type": str, "authorization": str, "reply": <the JSON body>}

With `server_url_in_header`, `server_url` is also added to the Authorization header after signing, as one
real client does: the broker must take only the oauth_* parameters from the header and still verify.
"""

import json
import sys
from urllib.parse import quote

import requests
from requests_oauthlib import OAuth1
from oauthlib.oauth1 import SIGNATURE_TYPE_AUTH_HEADER


class ServerUrlInHeader(requests.auth.AuthBase):
    """Signs with `inner`, then appends server_url to the Authorization header."""

    def __init__(self, inner, server_url):
        self.inner = inner
        self.server_url = server_url

    def __call__(self, request):
        request = self.inner(request)
        header = request.headers["Authorization"]
        if isinstance(header, bytes):
            header = header.decode("ascii")
        request.headers["Authorization"] = header + ', server_url="%s"' % quote(
            self.server_url, safe=""
        )
        return request


def main():
    case = json.load(sys.stdin)
    auth = OAuth1(
        case["consumer_key"],
        client_secret=case["consumer_secret"],
        signature_method=case.get("signature_method", "HMAC-SHA1"),
        signature_type=SIGNATURE_TYPE_AUTH_HEADER,
    )
    if case.get("server_url_in_header"):
        auth = ServerUrlInHeader(auth, case["server_url"])
    response = requests.post(
        case["url"],
        data={"server_url": case["server_url"]},
        auth=auth,
        verify=case["ca"],
        timeout=60,
    )
    authorization = response.request.headers.get("Authorization", "")
    if isinstance(authorization, bytes):
        authorization = authorization.decode("ascii")
    try:
        reply = response.json()
    except ValueError:
        reply = response.text
    json.dump(
        {
            "status": response.status_code,
            "content_type": response.headers.get("Content-Type", ""),
            "authorization": authorization,
            "reply": reply,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
