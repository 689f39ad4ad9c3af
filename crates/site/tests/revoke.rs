//! `POST /oauth1/revoke` (ours): an app revokes the access token that signs the request, against a real site
//! over a real socket, on both backends.
#![allow(clippy::unwrap_used)]

mod common;

use authbroker_oauth1::{AuthorizationHeader, SignatureMethod, Signer};
use authbroker_site::Consumer;
use authbroker_testkit::{access_token, request_token};
use common::*;

const CALLBACK: &str = "http://127.0.0.1:9/callback";
const SHA1: SignatureMethod = SignatureMethod::HmacSha1;
const FORM_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
const TEXT_TYPE: &str = "text/plain; charset=utf-8";

fn with_oauth(
    request: reqwest::RequestBuilder,
    oauth: &AuthorizationHeader,
) -> reqwest::RequestBuilder {
    request.header("Authorization", oauth.to_header_value())
}

fn signer<'a>(consumer: &'a Consumer, token: &'a str, secret: &'a str) -> Signer<'a> {
    Signer::new(SHA1, &consumer.key, &consumer.secret).token(token, secret)
}

/// `POST /oauth1/revoke` signed by `signer` (a fresh nonce each call).
fn revoke_request(site: &TestSite, signer: &Signer<'_>) -> reqwest::RequestBuilder {
    signed("POST", &site.url("/oauth1/revoke"), signer)
}

/// A signed `GET /wp-json/wp/v2/users/me`.
async fn me(site: &TestSite, signer: &Signer<'_>) -> Reply {
    send(signed("GET", &site.url("/wp-json/wp/v2/users/me"), signer)).await
}

/// The token still authenticates REST calls as the admin.
async fn assert_token_works(site: &TestSite, signer: &Signer<'_>) {
    let reply = me(site, signer).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["username"], "admin");
}

/// The token is refused as REST calls refuse an unknown one.
async fn assert_token_revoked(site: &TestSite, signer: &Signer<'_>) {
    let reply = me(site, signer).await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(reply.json()["code"], "json_oauth1_invalid_token");
    assert_eq!(reply.json()["data"]["status"], 401);
}

/// An OAuth endpoint error: plain text by default, the JSON envelope when the client asks for JSON. The
/// request is built twice (each time with a fresh nonce).
async fn expect_error(
    build: impl Fn() -> reqwest::RequestBuilder,
    status: u16,
    code: &str,
    message: &str,
) {
    let plain = send(build()).await;
    assert_eq!(plain.status, status, "{code}: {}", plain.body);
    assert_eq!(plain.header("content-type"), TEXT_TYPE, "{code}");
    assert_eq!(plain.body, message, "{code}");
    let json = send(build().header("Accept", "application/json")).await;
    assert_eq!(json.status, status, "{code}: {}", json.body);
    assert!(
        json.header("content-type").starts_with("application/json"),
        "{code}"
    );
    assert_eq!(
        json.json(),
        serde_json::json!({"code": code, "message": message, "data": {"status": status}})
    );
}

#[tokio::test]
async fn revoking_ends_only_the_signing_token() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let consumer = site.consumer(CALLBACK).await;
        let AccessToken { token, secret } = site.three_legged(&consumer, SHA1).await;
        let AccessToken {
            token: other,
            secret: other_secret,
        } = site.three_legged(&consumer, SHA1).await;
        let revoked = signer(&consumer, &token, &secret);
        let kept = signer(&consumer, &other, &other_secret);
        assert_token_works(&site, &revoked).await;

        let reply = send(revoke_request(&site, &revoked)).await;
        assert_eq!(reply.status, 200, "{backend:?}: {}", reply.body);
        assert_eq!(reply.header("content-type"), FORM_TYPE);
        assert_eq!(reply.header("cache-control"), "no-store");
        assert_eq!(reply.body, "revoked=true");

        // The very next signed request with it is refused like an unknown token; the same user's other
        // token for the same app still works.
        assert_token_revoked(&site, &revoked).await;
        assert_token_works(&site, &kept).await;

        // Revoking it again: it is no token any more.
        expect_error(
            || revoke_request(&site, &revoked),
            401,
            "json_oauth1_invalid_token",
            "Invalid token",
        )
        .await;
        assert_token_works(&site, &kept).await;

        // HMAC-SHA256 and parameters in the form body work as for any signed request.
        let url = site.url("/oauth1/revoke");
        let form = [("reason".to_owned(), "disconnect".to_owned())];
        let sha256 = Signer::new(SignatureMethod::HmacSha256, &consumer.key, &consumer.secret)
            .token(&other, &other_secret);
        let oauth = sign_now(&sha256, "POST", &url, &form);
        let mut body = form.to_vec();
        body.extend(oauth.params.iter().cloned());
        let reply = send(reqwest::Client::new().post(&url).form(&body)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body, "revoked=true");
        assert_token_revoked(&site, &kept).await;
        site.cleanup().await;
    }
}

#[tokio::test]
async fn a_wrong_signature_revokes_nothing() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let consumer = site.consumer(CALLBACK).await;
        let stranger = site.consumer(CALLBACK).await;
        let AccessToken { token, secret } = site.three_legged(&consumer, SHA1).await;

        // The wrong token secret, the wrong consumer secret.
        let wrong_token_secret = signer(&consumer, &token, "wrong");
        expect_error(
            || revoke_request(&site, &wrong_token_secret),
            401,
            "json_oauth1_signature_mismatch",
            "OAuth signature does not match",
        )
        .await;
        let wrong_consumer_secret =
            Signer::new(SHA1, &consumer.key, "wrong").token(&token, &secret);
        expect_error(
            || revoke_request(&site, &wrong_consumer_secret),
            401,
            "json_oauth1_signature_mismatch",
            "OAuth signature does not match",
        )
        .await;
        // Signed for another URL than the one it is sent to.
        let right = signer(&consumer, &token, &secret);
        let oauth = sign_now(&right, "POST", &site.url("/oauth1/access"), &[]);
        let reply = send(with_oauth(
            reqwest::Client::new().post(site.url("/oauth1/revoke")),
            &oauth,
        ))
        .await;
        assert_eq!(reply.status, 401, "{}", reply.body);
        assert_eq!(reply.body, "OAuth signature does not match");
        // Another consumer cannot revoke this consumer's token, even knowing its secret.
        let other_app = signer(&stranger, &token, &secret);
        expect_error(
            || revoke_request(&site, &other_app),
            401,
            "json_oauth1_invalid_token",
            "Invalid token",
        )
        .await;
        // An unknown consumer.
        let unknown = Signer::new(SHA1, "nosuchapp", "secret").token(&token, &secret);
        expect_error(
            || revoke_request(&site, &unknown),
            401,
            "json_consumer_notfound",
            "Consumer ID is invalid",
        )
        .await;

        assert_token_works(&site, &right).await;
        site.cleanup().await;
    }
}

#[tokio::test]
async fn replayed_nonces_are_refused() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let consumer = site.consumer(CALLBACK).await;
        let AccessToken { token, secret } = site.three_legged(&consumer, SHA1).await;
        let right = signer(&consumer, &token, &secret);
        let revoke_url = site.url("/oauth1/revoke");

        // A nonce a REST call used cannot be used again to revoke: the same store, the same key.
        let (nonce_value, timestamp) = (nonce(), now());
        let me_url = site.url("/wp-json/wp/v2/users/me");
        let oauth = right
            .sign("GET", &me_url, &[], &nonce_value, timestamp)
            .unwrap();
        let reply = send(with_oauth(reqwest::Client::new().get(&me_url), &oauth)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let reused = right
            .sign("POST", &revoke_url, &[], &nonce_value, timestamp)
            .unwrap();
        for accept in ["text/plain", "application/json"] {
            let reply = send(
                with_oauth(reqwest::Client::new().post(&revoke_url), &reused)
                    .header("Accept", accept),
            )
            .await;
            assert_eq!(reply.status, 401, "{}", reply.body);
            if accept == "application/json" {
                assert_eq!(reply.json()["code"], "json_oauth1_nonce_already_used");
            } else {
                assert_eq!(reply.body, "Invalid nonce - nonce has already been used");
            }
        }
        assert_token_works(&site, &right).await;

        // A timestamp outside the window.
        let stale = right
            .sign("POST", &revoke_url, &[], &nonce(), now() - 3600)
            .unwrap();
        let reply = send(with_oauth(reqwest::Client::new().post(&revoke_url), &stale)).await;
        assert_eq!(reply.status, 401, "{}", reply.body);
        assert_eq!(reply.body, "Invalid timestamp");
        assert_token_works(&site, &right).await;

        // The successful revocation replayed: refused (the token is gone before the nonce is looked at).
        let oauth = sign_now(&right, "POST", &revoke_url, &[]);
        let reply = send(with_oauth(reqwest::Client::new().post(&revoke_url), &oauth)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let replay = send(with_oauth(reqwest::Client::new().post(&revoke_url), &oauth)).await;
        assert_eq!(replay.status, 401, "{}", replay.body);
        assert_eq!(replay.body, "Invalid token");
        assert_token_revoked(&site, &right).await;
        site.cleanup().await;
    }
}

#[tokio::test]
async fn revocation_needs_an_access_token() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let consumer = site.consumer(CALLBACK).await;
        let client = reqwest::Client::new();

        // Unsigned: 400, as the token endpoints answer.
        expect_error(
            || client.post(site.url("/oauth1/revoke")),
            400,
            "json_oauth1_missing_parameter",
            "No OAuth parameters supplied",
        )
        .await;
        expect_error(
            || {
                client
                    .post(site.url("/oauth1/revoke"))
                    .form(&[("oauth_token", "")])
            },
            400,
            "json_oauth1_missing_parameter",
            "No OAuth parameters supplied",
        )
        .await;
        // Signed by the consumer alone: the token is a missing parameter, as on a signed REST call.
        let consumer_only = Signer::new(SHA1, &consumer.key, &consumer.secret);
        expect_error(
            || revoke_request(&site, &consumer_only),
            401,
            "json_oauth1_missing_parameter",
            "Missing OAuth parameter oauth_token",
        )
        .await;
        // An unknown token.
        let unknown = signer(&consumer, "nosuchtoken", "secret");
        expect_error(
            || revoke_request(&site, &unknown),
            401,
            "json_oauth1_invalid_token",
            "Invalid token",
        )
        .await;

        // A request token cannot revoke, and is not consumed by trying: it is still exchanged afterwards.
        let (request_key, request_secret) = request_token(
            &site.base,
            Signer::new(SHA1, &consumer.key, &consumer.secret).callback(CALLBACK),
        )
        .await;
        let with_request_token = signer(&consumer, &request_key, &request_secret);
        expect_error(
            || revoke_request(&site, &with_request_token),
            401,
            "json_oauth1_invalid_token",
            "Invalid token",
        )
        .await;
        let admin = site.admin();
        admin.log_in(&site.base).await;
        let location = admin.approve(&site.base, &request_key).await;
        let verifier = form_value(location.split_once('?').unwrap().1, "oauth_verifier");
        // Approved but not exchanged: still not an access token.
        expect_error(
            || revoke_request(&site, &with_request_token),
            401,
            "json_oauth1_invalid_token",
            "Invalid token",
        )
        .await;
        let AccessToken { token, secret } = access_token(
            &site.base,
            Signer::new(SHA1, &consumer.key, &consumer.secret)
                .token(&request_key, &request_secret)
                .verifier(&verifier),
        )
        .await;
        assert_token_works(&site, &signer(&consumer, &token, &secret)).await;
        site.cleanup().await;
    }
}

#[tokio::test]
async fn post_only_with_cors() {
    let site = TestSite::start(Backend::Sqlite).await;
    let consumer = site.consumer(CALLBACK).await;
    let AccessToken { token, secret } = site.three_legged(&consumer, SHA1).await;
    let right = signer(&consumer, &token, &secret);
    let url = site.url("/oauth1/revoke");
    let origin = "https://app.example";

    // GET, signed or not, is not revocation: 405, and the token lives on.
    let reply = send(reqwest::Client::new().get(&url)).await;
    assert_eq!(reply.status, 405);
    let oauth = sign_now(&right, "GET", &url, &[]);
    let reply = send(with_oauth(reqwest::Client::new().get(&url), &oauth)).await;
    assert_eq!(reply.status, 405);
    assert_token_works(&site, &right).await;

    // The preflight of a browser app.
    let reply = send(
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, &url)
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "authorization"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), origin);
    assert!(
        reply
            .header("access-control-allow-headers")
            .to_ascii_lowercase()
            .contains("authorization")
    );
    assert_eq!(reply.header("access-control-allow-credentials"), "true");

    // CORS on errors and on success.
    let wrong = signer(&consumer, &token, "wrong");
    let reply = send(revoke_request(&site, &wrong).header("Origin", origin)).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("access-control-allow-origin"), origin);
    let reply = send(revoke_request(&site, &right).header("Origin", origin)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body, "revoked=true");
    assert_eq!(reply.header("access-control-allow-origin"), origin);
    assert_token_revoked(&site, &right).await;
    site.cleanup().await;
}
