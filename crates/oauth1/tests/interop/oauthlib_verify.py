"""Interop, direction 2: authbroker-oauth1 signs, oauthlib's server side verifies.

Driven by crates/oauth1/tests/interop_oauthlib.rs. Reads JSON on stdin:

    {"consumers": {key: secret},
     "request_tokens": {token: {"consumer": key, "secret": str, "verifier": str, "callback": str}},
     "access_tokens": {token: {"consumer": key, "secret": str}},
     "realms": [str],
     "requests": [{"id", "endpoint", "method", "url", "headers": {name: value}, "body": str | null}]}

where "endpoint" picks the oauthlib endpoint that checks the request:

    "resource"       ResourceEndpoint.validate_protected_resource_request (an access token is required)
    "request_token"  RequestTokenEndpoint.create_request_token_response (a callback is required)
    "access_token"   AccessTokenEndpoint.create_access_token_response (request token and verifier required)
    "signature_only" SignatureOnlyEndpoint.validate_request (two-legged, no token)

and prints {"oauthlib": "<version>", "results": [{"id", "valid": bool, "detail": str}]} on stdout.

The validator keeps oauthlib's default checks (key, token, nonce and verifier format; a 10-digit
timestamp within 600 s of the clock; one use per nonce) and only knows the credentials it is given.
"""

import json
import logging
import sys

import oauthlib
from oauthlib.oauth1 import (
    SIGNATURE_HMAC_SHA1,
    SIGNATURE_HMAC_SHA256,
    SIGNATURE_PLAINTEXT,
    AccessTokenEndpoint,
    RequestTokenEndpoint,
    RequestValidator,
    ResourceEndpoint,
    SignatureOnlyEndpoint,
)


class Validator(RequestValidator):
    """Knows the test credentials; everything else is refused (dummies keep the timing uniform)."""

    def __init__(self, config):
        super().__init__()
        self.consumers = config["consumers"]
        self.request_tokens = config["request_tokens"]
        self.access_tokens = config["access_tokens"]
        self.known_realms = list(config["realms"])
        self.seen_nonces = set()

    # The test URIs mix http and https; the signature does not depend on it.
    @property
    def enforce_ssl(self):
        return False

    @property
    def allowed_signature_methods(self):
        return (SIGNATURE_HMAC_SHA1, SIGNATURE_HMAC_SHA256, SIGNATURE_PLAINTEXT)

    @property
    def realms(self):
        return self.known_realms

    @property
    def dummy_client(self):
        return "dummyConsumerKey000000"

    @property
    def dummy_request_token(self):
        return "dummyRequestToken00000"

    @property
    def dummy_access_token(self):
        return "dummyAccessToken000000"

    # Clients.
    def validate_client_key(self, client_key, request):
        return client_key in self.consumers

    def get_client_secret(self, client_key, request):
        return self.consumers.get(client_key, "dummy secret")

    # Temporary credentials.
    def get_default_realms(self, client_key, request):
        return []

    def validate_requested_realms(self, client_key, realms, request):
        return all(realm in self.known_realms for realm in realms)

    def validate_redirect_uri(self, client_key, redirect_uri, request):
        return any(
            t["consumer"] == client_key and t["callback"] == redirect_uri
            for t in self.request_tokens.values()
        )

    def save_request_token(self, token, request):
        pass

    # Token request.
    def _token(self, table, client_key, token):
        entry = table.get(token)
        if entry is None or entry["consumer"] != client_key:
            return None
        return entry

    def validate_request_token(self, client_key, token, request):
        return self._token(self.request_tokens, client_key, token) is not None

    def get_request_token_secret(self, client_key, token, request):
        entry = self._token(self.request_tokens, client_key, token)
        return entry["secret"] if entry else "dummy secret"

    def validate_verifier(self, client_key, token, verifier, request):
        entry = self._token(self.request_tokens, client_key, token)
        return entry is not None and entry["verifier"] == verifier

    def get_realms(self, token, request):
        return []

    def invalidate_request_token(self, client_key, request_token, request):
        pass

    def save_access_token(self, token, request):
        pass

    # Protected resources.
    def validate_access_token(self, client_key, token, request):
        return self._token(self.access_tokens, client_key, token) is not None

    def get_access_token_secret(self, client_key, token, request):
        entry = self._token(self.access_tokens, client_key, token)
        return entry["secret"] if entry else "dummy secret"

    def validate_realms(self, client_key, token, request, uri=None, realms=None):
        return True

    # Replay protection: a nonce is unique per client, timestamp and token (RFC 5849 section 3.3).
    def validate_timestamp_and_nonce(self, client_key, timestamp, nonce, request,
                                     request_token=None, access_token=None):
        key = (client_key, timestamp, nonce, request_token or access_token or "")
        if key in self.seen_nonces:
            return False
        self.seen_nonces.add(key)
        return True


class Log(logging.Handler):
    """Collects oauthlib's log lines, which say why a request failed."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def check(validator, request):
    args = (request["url"], request["method"], request["body"], request["headers"])
    endpoint = request["endpoint"]
    if endpoint == "resource":
        valid, checked = ResourceEndpoint(validator).validate_protected_resource_request(*args)
        return valid, "" if checked is None else repr(checked.validator_log)
    if endpoint == "signature_only":
        valid, checked = SignatureOnlyEndpoint(validator).validate_request(*args)
        return valid, "" if checked is None else repr(checked.validator_log)
    if endpoint == "request_token":
        _, body, status = RequestTokenEndpoint(validator).create_request_token_response(*args)
        return status == 200, f"{status} {body}"
    if endpoint == "access_token":
        _, body, status = AccessTokenEndpoint(validator).create_access_token_response(*args)
        return status == 200, f"{status} {body}"
    raise ValueError(f"unknown endpoint {endpoint!r}")


def main():
    config = json.load(sys.stdin)
    validator = Validator(config)
    log = Log()
    oauthlib_logger = logging.getLogger("oauthlib")
    oauthlib_logger.addHandler(log)
    oauthlib_logger.setLevel(logging.DEBUG)
    results = []
    for request in config["requests"]:
        log.lines.clear()
        valid, detail = check(validator, request)
        results.append({
            "id": request["id"],
            "valid": bool(valid),
            "detail": " | ".join([detail] + log.lines),
        })
    json.dump({"oauthlib": oauthlib.__version__, "results": results}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
