"""Interop: Python's requests-oauthlib runs the three-legged OAuth 1.0a flow against a running site.

Driven by crates/site/tests/interop_requests_oauthlib.rs, which starts the site, registers a consumer and
sends as JSON on stdin:

    {"base", "consumer_key", "consumer_secret", "callback", "login", "password", "posts": bool}

For every signature method (HMAC-SHA1, HMAC-SHA256) and signature type (header, query, body) the script:

1. discovers the OAuth endpoints from the REST index (`GET /wp-json/`);
2. `OAuth1Session.fetch_request_token` with the callback;
3. as the user, with plain form posts on a `requests.Session`: GET /login, read the hidden `_csrf`, POST
   /login; GET the authorize URL, read `_csrf`, POST /oauth1/authorize with `wp-submit=authorize` without
   following the redirect, and hands the `Location` to `parse_authorization_response`;
4. `fetch_access_token`;
5. signed REST calls: `GET users/me` (header or query; a GET has no body, so the body run signs it in the
   header), and when "posts" is set `POST wp/v2/posts` with a form body (signed with the run's type) and
   with a JSON body (JSON is not signed: header or query);
6. replays the access-token exchange, which the site must refuse (the request token is used up).

It prints one JSON object: {"oauthlib", "requests_oauthlib", "runs": [...]} where each run records what the
site answered; any exception is reported in the run's "error" with its traceback instead of aborting.
"""

import json
import re
import sys
import traceback
from urllib.parse import parse_qs, urlsplit

import oauthlib
import requests
import requests_oauthlib
from oauthlib.oauth1 import (
    SIGNATURE_HMAC_SHA1,
    SIGNATURE_HMAC_SHA256,
    SIGNATURE_TYPE_AUTH_HEADER,
    SIGNATURE_TYPE_BODY,
    SIGNATURE_TYPE_QUERY,
)
from requests_oauthlib import OAuth1Session
from requests_oauthlib.oauth1_session import TokenRequestDenied

TIMEOUT = 30
CSRF = re.compile(r'name="_csrf" value="([^"]*)"')


def csrf_field(page):
    match = CSRF.search(page)
    if not match:
        raise AssertionError("no _csrf field in page: " + page[:2000])
    return match.group(1)


def discover(base):
    response = requests.get(base + "/wp-json/", timeout=TIMEOUT)
    response.raise_for_status()
    return response.json()["authentication"]["oauth1"]


def log_in(base, login, password):
    """A browser session signed in through the login form."""
    browser = requests.Session()
    page = browser.get(base + "/login", timeout=TIMEOUT)
    page.raise_for_status()
    response = browser.post(
        base + "/login",
        data={
            "log": login,
            "pwd": password,
            "_csrf": csrf_field(page.text),
            "redirect_to": "/",
        },
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    if response.status_code != 303:
        raise AssertionError("login answered %d: %s" % (response.status_code, response.text[:2000]))
    return browser


def approve(browser, base, authorize_url):
    """Shows the consent page and approves; returns the redirect's Location."""
    page = browser.get(authorize_url, timeout=TIMEOUT)
    if page.status_code != 200:
        raise AssertionError("consent page answered %d: %s" % (page.status_code, page.text[:2000]))
    token = parse_qs(urlsplit(authorize_url).query)["oauth_token"][0]
    response = browser.post(
        base + "/oauth1/authorize",
        data={"_csrf": csrf_field(page.text), "oauth_token": token, "wp-submit": "authorize"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    if response.status_code not in (302, 303):
        raise AssertionError("approval answered %d: %s" % (response.status_code, response.text[:2000]))
    return response.headers["Location"]


def placement(request):
    """Where a sent request carried its signature: "header", "query" or "body"."""
    def text(value):
        # requests-oauthlib sets some of these as bytes.
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")

    places = []
    if text(request.headers.get("Authorization")).startswith("OAuth "):
        places.append("header")
    if "oauth_signature=" in urlsplit(text(request.url)).query:
        places.append("query")
    if "oauth_signature=" in text(request.body):
        places.append("body")
    return "+".join(places)


def reply(response):
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return {
        "status": response.status_code,
        "content_type": response.headers.get("Content-Type", ""),
        "body": body,
        "signed_in": placement(response.request),
    }


def run(config, endpoints, method, signature_type):
    base = config["base"]
    record = {"signature_method": method, "signature_type": signature_type}
    oauth = OAuth1Session(
        config["consumer_key"],
        client_secret=config["consumer_secret"],
        callback_uri=config["callback"],
        signature_method=method,
        signature_type=signature_type,
    )
    # Where the token requests carried their signature, as sent.
    record["token_requests_signed_in"] = signed_in = []
    oauth.hooks["response"].append(
        lambda response, *args, **kwargs: signed_in.append(placement(response.request))
    )
    request_token = oauth.fetch_request_token(endpoints["request"], timeout=TIMEOUT)
    record["request_token"] = request_token

    authorize_url = oauth.authorization_url(endpoints["authorize"])
    browser = log_in(base, config["login"], config["password"])
    location = approve(browser, base, authorize_url)
    record["location"] = location
    record["authorization"] = oauth.parse_authorization_response(location)

    access = oauth.fetch_access_token(endpoints["access"], timeout=TIMEOUT)
    record["access_token"] = access

    def session(kind):
        return OAuth1Session(
            config["consumer_key"],
            client_secret=config["consumer_secret"],
            resource_owner_key=access["oauth_token"],
            resource_owner_secret=access["oauth_token_secret"],
            signature_method=method,
            signature_type=kind,
        )

    # A GET carries no body: the body run signs its GET in the header.
    no_body = SIGNATURE_TYPE_AUTH_HEADER if signature_type == SIGNATURE_TYPE_BODY else signature_type
    record["me"] = reply(session(no_body).get(base + "/wp-json/wp/v2/users/me", timeout=TIMEOUT))
    record["me_signature_type"] = no_body

    if config.get("posts"):
        title = "Form post %s %s" % (method, signature_type)
        record["form_post"] = reply(
            session(signature_type).post(
                base + "/wp-json/wp/v2/posts",
                data={"title": title, "content": "Sent as a form & signed: 100% + more", "status": "publish"},
                timeout=TIMEOUT,
            )
        )
        record["form_post_title"] = title
        title = "JSON post %s %s" % (method, signature_type)
        record["json_post"] = reply(
            session(no_body).post(
                base + "/wp-json/wp/v2/posts",
                json={"title": title, "content": "Sent as JSON", "status": "draft"},
                timeout=TIMEOUT,
            )
        )
        record["json_post_title"] = title

    # The request token is used up: exchanging it again is refused, with the site's message.
    again = OAuth1Session(
        config["consumer_key"],
        client_secret=config["consumer_secret"],
        resource_owner_key=request_token["oauth_token"],
        resource_owner_secret=request_token["oauth_token_secret"],
        verifier=record["authorization"]["oauth_verifier"],
        signature_method=method,
        signature_type=signature_type,
    )
    try:
        again.fetch_access_token(endpoints["access"], timeout=TIMEOUT)
        record["second_exchange"] = {"status": 200}
    except TokenRequestDenied as denied:
        record["second_exchange"] = {"status": denied.status_code, "text": denied.response.text}
    return record


def main():
    config = json.load(sys.stdin)
    endpoints = discover(config["base"])
    runs = []
    for method in (SIGNATURE_HMAC_SHA1, SIGNATURE_HMAC_SHA256):
        for signature_type in (SIGNATURE_TYPE_AUTH_HEADER, SIGNATURE_TYPE_QUERY, SIGNATURE_TYPE_BODY):
            try:
                runs.append(run(config, endpoints, method, signature_type))
            except Exception:  # reported to the Rust side, which fails the test with it
                runs.append(
                    {
                        "signature_method": method,
                        "signature_type": signature_type,
                        "error": traceback.format_exc(),
                    }
                )
    json.dump(
        {
            "oauthlib": oauthlib.__version__,
            "requests_oauthlib": requests_oauthlib.__version__,
            "endpoints": endpoints,
            "runs": runs,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
