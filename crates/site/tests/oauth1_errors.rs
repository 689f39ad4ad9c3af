//! Every error of the OAuth 1.0a provider (PROTOCOL.md R7–R11) against a real site over a real socket, and
//! the edges of the happy path: content types, CORS, GET and POST, parameters in the query and the body,
//! `oob`, cancel, re-approval, callbacks changed on the authorize URL, OAuth over cookies, malformed input.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use authbroker_oauth1::{AuthorizationHeader, SignatureMethod, Signer, percent_encode};
use authbroker_site::{Clock, Consumer, FixedClock, Role, create_user};
use common::*;

const CALLBACK: &str = "http://127.0.0.1:9/callback";
const SHA1: SignatureMethod = SignatureMethod::HmacSha1;
const FORM_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
const TEXT_TYPE: &str = "text/plain; charset=utf-8";

type Params = Vec<(String, String)>;

fn params(pairs: &[(&str, &str)]) -> Params {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// Where a request carries its OAuth protocol parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Header,
    Query,
    Body,
}

/// A signed request, re-signed (fresh nonce, the site's clock) every time it is built.
#[derive(Debug, Clone)]
struct Call<'a> {
    method: &'static str,
    url: String,
    signer: Signer<'a>,
    form: Params,
    place: Place,
}

impl<'a> Call<'a> {
    fn post(url: String, signer: Signer<'a>) -> Self {
        Self {
            method: "POST",
            url,
            signer,
            form: Vec::new(),
            place: Place::Header,
        }
    }

    fn get(url: String, signer: Signer<'a>) -> Self {
        Self {
            method: "GET",
            ..Self::post(url, signer)
        }
    }

    fn form(mut self, form: &[(&str, &str)]) -> Self {
        self.form = params(form);
        self
    }

    fn place(mut self, place: Place) -> Self {
        self.place = place;
        self
    }

    /// The OAuth parameters, signed now with the site's clock and a fresh nonce.
    fn sign(&self, site: &TestSite) -> AuthorizationHeader {
        self.signer
            .sign(
                self.method,
                &self.url,
                &self.form,
                &nonce(),
                site.state.now(),
            )
            .unwrap()
    }

    fn build(&self, site: &TestSite) -> reqwest::RequestBuilder {
        self.build_with(&self.sign(site))
    }

    /// The request carrying `oauth` (possibly tampered with) at the call's place.
    fn build_with(&self, oauth: &AuthorizationHeader) -> reqwest::RequestBuilder {
        let mut url = self.url.clone();
        let mut form = self.form.clone();
        let mut authorization = None;
        match self.place {
            Place::Header => authorization = Some(oauth.to_header_value()),
            Place::Query => {
                for (name, value) in &oauth.params {
                    url.push(if url.contains('?') { '&' } else { '?' });
                    url.push_str(&percent_encode(name));
                    url.push('=');
                    url.push_str(&percent_encode(value));
                }
            }
            Place::Body => form.extend(oauth.params.iter().cloned()),
        }
        let mut request = reqwest::Client::new().request(self.method.parse().unwrap(), &url);
        if let Some(authorization) = authorization {
            request = request.header("Authorization", authorization);
        }
        if !form.is_empty() {
            request = request.form(&form);
        }
        request
    }
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
    assert_eq!(plain.content_type(), TEXT_TYPE, "{code}");
    assert!(
        plain.body.contains(message),
        "{code}: {:?} does not say {message:?}",
        plain.body
    );
    let json = send(build().header("Accept", "application/json")).await;
    assert_eq!(json.status, status, "{code}: {}", json.body);
    assert!(
        json.content_type().starts_with("application/json"),
        "{code}"
    );
    let body = json.json();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["data"]["status"], status, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains(message),
        "{code}: {body} does not say {message:?}"
    );
}

/// A REST error: always the JSON envelope.
async fn expect_rest_error(request: reqwest::RequestBuilder, status: u16, code: &str) {
    let reply = send(request).await;
    assert_eq!(reply.status, status, "{code}: {}", reply.body);
    assert!(reply.content_type().starts_with("application/json"));
    let body = reply.json();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["data"]["status"], status, "{body}");
}

/// An error on the (browser-facing) authorize page: an HTML page with the status and message.
fn expect_page_error(reply: &Reply, status: u16, message: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert!(reply.content_type().starts_with("text/html"), "{reply:?}");
    assert!(
        reply.body.contains(message),
        "{:?} does not say {message:?}",
        reply.body
    );
}

fn consumer_signer(consumer: &Consumer) -> Signer<'_> {
    Signer::new(SHA1, &consumer.key, &consumer.secret)
}

/// Temporary credentials (asserting success), with `callback` if any.
async fn request_token(
    site: &TestSite,
    consumer: &Consumer,
    callback: Option<&str>,
) -> (String, String) {
    let mut signer = consumer_signer(consumer);
    if let Some(callback) = callback {
        signer = signer.callback(callback);
    }
    let reply = send(Call::post(site.url("/oauth1/request"), signer).build(site)).await;
    assert_eq!(reply.form_value("oauth_callback_confirmed"), "true");
    (
        reply.form_value("oauth_token"),
        reply.form_value("oauth_token_secret"),
    )
}

async fn admin_browser(site: &TestSite) -> reqwest::Client {
    site.logged_in(&site.admin_login, &site.admin_password)
        .await
}

/// The consent page (asserting it is shown); returns its CSRF field.
async fn consent(site: &TestSite, browser: &reqwest::Client, query: &str) -> String {
    let reply = send(browser.get(site.url(&format!("/oauth1/authorize?{query}")))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.contains("Connect Test App"), "{}", reply.body);
    hidden_field(&reply.body, "_csrf")
}

async fn decide(
    site: &TestSite,
    browser: &reqwest::Client,
    csrf: &str,
    key: &str,
    decision: &str,
) -> Reply {
    send(browser.post(site.url("/oauth1/authorize")).form(&[
        ("_csrf", csrf),
        ("oauth_token", key),
        ("wp-submit", decision),
    ]))
    .await
}

/// Shows the consent page for `key` and approves; returns the redirect's `Location`.
async fn approve(site: &TestSite, browser: &reqwest::Client, key: &str) -> String {
    let csrf = consent(site, browser, &format!("oauth_token={key}")).await;
    let reply = decide(site, browser, &csrf, key, "authorize").await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    reply.location().to_owned()
}

fn query_value(location: &str, name: &str) -> String {
    form_value(location.split_once('?').unwrap().1, name)
}

fn access_call<'a>(
    site: &TestSite,
    consumer: &'a Consumer,
    key: &'a str,
    secret: &'a str,
    verifier: &'a str,
) -> Call<'a> {
    Call::post(
        site.url("/oauth1/access"),
        consumer_signer(consumer)
            .token(key, secret)
            .verifier(verifier),
    )
}

/// The whole flow with the signer's clock being the site's; returns the access token and secret.
async fn connect(site: &TestSite, consumer: &Consumer) -> (String, String) {
    let (key, secret) = request_token(site, consumer, Some(CALLBACK)).await;
    let browser = admin_browser(site).await;
    let verifier = query_value(&approve(site, &browser, &key).await, "oauth_verifier");
    let reply = send(access_call(site, consumer, &key, &secret, &verifier).build(site)).await;
    (
        reply.form_value("oauth_token"),
        reply.form_value("oauth_token_secret"),
    )
}

fn me_call<'a>(
    site: &TestSite,
    consumer: &'a Consumer,
    token: &'a str,
    secret: &'a str,
) -> Call<'a> {
    Call::get(
        site.url("/wp-json/wp/v2/users/me"),
        consumer_signer(consumer).token(token, secret),
    )
}

// ---------------------------------------------------------------------------------------------------------
// json_oauth1_missing_parameter

#[tokio::test]
async fn missing_parameters() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let consumer = site.consumer(CALLBACK).await;
        let client = reqwest::Client::new();

        // No OAuth parameters at all: 400, on both endpoints and both methods.
        for path in ["/oauth1/request", "/oauth1/access"] {
            expect_error(
                || client.post(site.url(path)),
                400,
                "json_oauth1_missing_parameter",
                "No OAuth parameters supplied",
            )
            .await;
            expect_error(
                || client.get(site.url(path)),
                400,
                "json_oauth1_missing_parameter",
                "No OAuth parameters supplied",
            )
            .await;
            // Another scheme is not OAuth at all.
            expect_error(
                || {
                    client
                        .post(site.url(path))
                        .header("Authorization", "Basic YWRtaW46cGFzc3dvcmQ=")
                },
                400,
                "json_oauth1_missing_parameter",
                "No OAuth parameters supplied",
            )
            .await;
        }

        // Some present, some missing: 401 naming every missing one.
        let header = format!("OAuth oauth_consumer_key=\"{}\"", consumer.key);
        expect_error(
            || {
                client
                    .post(site.url("/oauth1/request"))
                    .header("Authorization", &header)
            },
            401,
            "json_oauth1_missing_parameter",
            "Missing OAuth parameters oauth_timestamp, oauth_nonce, oauth_signature, oauth_signature_method",
        )
        .await;
        // Empty counts as missing.
        let call = Call::post(site.url("/oauth1/request"), consumer_signer(&consumer));
        expect_error(
            || {
                let mut oauth = call.sign(&site);
                oauth.params.retain(|(name, _)| name != "oauth_signature");
                oauth.params.push(("oauth_signature".into(), String::new()));
                call.build_with(&oauth)
            },
            401,
            "json_oauth1_missing_parameter",
            "Missing OAuth parameter oauth_signature",
        )
        .await;
        expect_error(
            || {
                let mut oauth = call.sign(&site);
                oauth.params.retain(|(name, _)| name != "oauth_nonce");
                call.build_with(&oauth)
            },
            401,
            "json_oauth1_missing_parameter",
            "Missing OAuth parameter oauth_nonce",
        )
        .await;

        // The access endpoint needs a verifier and a token.
        let (key, secret) = request_token(&site, &consumer, Some(CALLBACK)).await;
        let no_verifier = Call::post(
            site.url("/oauth1/access"),
            consumer_signer(&consumer).token(&key, &secret),
        );
        expect_error(
            || no_verifier.build(&site),
            401,
            "json_oauth1_missing_parameter",
            "Missing OAuth parameter oauth_verifier",
        )
        .await;
        let no_token = Call::post(
            site.url("/oauth1/access"),
            consumer_signer(&consumer).verifier("abc"),
        );
        expect_error(
            || no_token.build(&site),
            401,
            "json_oauth1_missing_parameter",
            "Missing OAuth parameter oauth_token",
        )
        .await;

        // A REST call with some OAuth parameters is a failed OAuth request, not an anonymous one.
        expect_rest_error(
            client
                .get(site.url("/wp-json/wp/v2/users/me"))
                .header("Authorization", &header),
            401,
            "json_oauth1_missing_parameter",
        )
        .await;
        // A signed REST call needs a token.
        let tokenless = Call::get(
            site.url("/wp-json/wp/v2/users/me"),
            consumer_signer(&consumer),
        );
        expect_rest_error(tokenless.build(&site), 401, "json_oauth1_missing_parameter").await;

        // The authorize page needs the token.
        let reply = send(client.get(site.url("/oauth1/authorize"))).await;
        expect_page_error(&reply, 400, "Missing OAuth parameter oauth_token");
        let reply = send(client.get(site.url("/oauth1/authorize?oauth_token="))).await;
        expect_page_error(&reply, 400, "Missing OAuth parameter oauth_token");
        site.cleanup().await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// json_consumer_notfound

#[tokio::test]
async fn unknown_consumer() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let consumer = site.consumer(CALLBACK).await;
        let (token, token_secret) = connect(&site, &consumer).await;
        let stranger = Call::post(
            site.url("/oauth1/request"),
            Signer::new(SHA1, "nosuchconsumer", &consumer.secret),
        );
        expect_error(
            || stranger.build(&site),
            401,
            "json_consumer_notfound",
            "Consumer ID is invalid",
        )
        .await;
        let stranger_access = Call::post(
            site.url("/oauth1/access"),
            Signer::new(SHA1, "nosuchconsumer", &consumer.secret)
                .token("abc", "def")
                .verifier("ghi"),
        );
        expect_error(
            || stranger_access.build(&site),
            401,
            "json_consumer_notfound",
            "Consumer ID is invalid",
        )
        .await;
        let stranger_rest = Call::get(
            site.url("/wp-json/wp/v2/users/me"),
            Signer::new(SHA1, "nosuchconsumer", &consumer.secret).token(&token, &token_secret),
        );
        expect_rest_error(stranger_rest.build(&site), 401, "json_consumer_notfound").await;
        site.cleanup().await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// json_oauth1_signature_mismatch

#[tokio::test]
async fn signature_mismatch() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let consumer = site.consumer(CALLBACK).await;
        let request_url = site.url("/oauth1/request");

        // Wrong consumer secret.
        let wrong_secret = Call::post(
            request_url.clone(),
            Signer::new(SHA1, &consumer.key, "not-the-secret"),
        );
        expect_error(
            || wrong_secret.build(&site),
            401,
            "json_oauth1_signature_mismatch",
            "OAuth signature does not match",
        )
        .await;

        // Signed for another host: the site checks against its canonical URL, not what the client thinks.
        let other_host = Call::post(
            "http://evil.example/oauth1/request".to_owned(),
            consumer_signer(&consumer),
        );
        expect_error(
            || {
                let oauth = other_host.sign(&site);
                Call::post(request_url.clone(), consumer_signer(&consumer)).build_with(&oauth)
            },
            401,
            "json_oauth1_signature_mismatch",
            "OAuth signature does not match",
        )
        .await;

        // A signed body parameter changed after signing.
        let signed_body = Call::post(request_url.clone(), consumer_signer(&consumer))
            .form(&[("callback_url", "http://127.0.0.1:9/a")]);
        expect_error(
            || {
                let oauth = signed_body.sign(&site);
                signed_body
                    .clone()
                    .form(&[("callback_url", "http://127.0.0.1:9/b")])
                    .build_with(&oauth)
            },
            401,
            "json_oauth1_signature_mismatch",
            "OAuth signature does not match",
        )
        .await;

        // A signed query parameter changed after signing.
        let signed_query = Call::post(format!("{request_url}?x=1"), consumer_signer(&consumer));
        expect_error(
            || {
                let oauth = signed_query.sign(&site);
                Call::post(format!("{request_url}?x=2"), consumer_signer(&consumer))
                    .build_with(&oauth)
            },
            401,
            "json_oauth1_signature_mismatch",
            "OAuth signature does not match",
        )
        .await;

        // Signed as GET, sent as POST.
        let as_get = Call::get(request_url.clone(), consumer_signer(&consumer));
        expect_error(
            || {
                let oauth = as_get.sign(&site);
                Call::post(request_url.clone(), consumer_signer(&consumer)).build_with(&oauth)
            },
            401,
            "json_oauth1_signature_mismatch",
            "OAuth signature does not match",
        )
        .await;

        // The same checks at the access endpoint and on a REST call: wrong token secret.
        let (key, _) = request_token(&site, &consumer, Some(CALLBACK)).await;
        let wrong_token_secret = access_call(&site, &consumer, &key, "wrong", "verifier");
        expect_error(
            || wrong_token_secret.build(&site),
            401,
            "json_oauth1_signature_mismatch",
            "OAuth signature does not match",
        )
        .await;
        let (token, _) = connect(&site, &consumer).await;
        expect_rest_error(
            me_call(&site, &consumer, &token, "wrong").build(&site),
            401,
            "json_oauth1_signature_mismatch",
        )
        .await;

        // The Host header does not decide what was signed: a request signed for the canonical URL but sent
        // with another Host still verifies.
        let oauth = Call::post(request_url.clone(), consumer_signer(&consumer)).sign(&site);
        let reply = send(
            reqwest::Client::new()
                .post(&request_url)
                .header("Host", "evil.example")
                .header("Authorization", oauth.to_header_value()),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        site.cleanup().await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// json_oauth1_invalid_signature_method

#[tokio::test]
async fn invalid_signature_method() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let consumer = site.consumer(CALLBACK).await;
        let call = Call::post(site.url("/oauth1/request"), consumer_signer(&consumer));
        for method in ["RSA-SHA1", "HMAC-MD5", "hmac-sha1-nope"] {
            expect_error(
                || {
                    let mut oauth = call.sign(&site);
                    for (name, value) in &mut oauth.params {
                        if name == "oauth_signature_method" {
                            *value = method.to_owned();
                        }
                    }
                    call.build_with(&oauth)
                },
                401,
                "json_oauth1_invalid_signature_method",
                "Signature method is invalid",
            )
            .await;
        }

        // PLAINTEXT sends the secrets themselves: refused because this site is plain HTTP, even when the
        // "signature" is right.
        let plaintext = Call::post(
            site.url("/oauth1/request"),
            Signer::new(SignatureMethod::Plaintext, &consumer.key, &consumer.secret),
        );
        expect_error(
            || plaintext.build(&site),
            401,
            "json_oauth1_invalid_signature_method",
            "Signature method is invalid",
        )
        .await;
        let (key, secret) = request_token(&site, &consumer, Some(CALLBACK)).await;
        let plaintext_access = Call::post(
            site.url("/oauth1/access"),
            Signer::new(SignatureMethod::Plaintext, &consumer.key, &consumer.secret)
                .token(&key, &secret)
                .verifier("whatever"),
        );
        expect_error(
            || plaintext_access.build(&site),
            401,
            "json_oauth1_invalid_signature_method",
            "Signature method is invalid",
        )
        .await;
        let (token, token_secret) = connect(&site, &consumer).await;
        let plaintext_rest = Call::get(
            site.url("/wp-json/wp/v2/users/me"),
            Signer::new(SignatureMethod::Plaintext, &consumer.key, &consumer.secret)
                .token(&token, &token_secret),
        );
        expect_rest_error(
            plaintext_rest.build(&site),
            401,
            "json_oauth1_invalid_signature_method",
        )
        .await;
        site.cleanup().await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// json_oauth1_invalid_timestamp

#[tokio::test]
async fn invalid_timestamp() {
    for backend in BACKENDS {
        // A clock that stands still makes the window's edges exact.
        let clock: Arc<dyn Clock> = Arc::new(FixedClock::new(now()));
        let site = TestSite::start_with(backend, clock, |_| {}).await;
        let consumer = site.consumer(CALLBACK).await;
        let url = site.url("/oauth1/request");
        let signer = consumer_signer(&consumer);
        let at = |timestamp: i64| {
            let oauth = signer.sign("POST", &url, &[], &nonce(), timestamp).unwrap();
            Call::post(url.clone(), signer.clone()).build_with(&oauth)
        };
        let now = site.state.now();
        for stale in [now - 901, now + 901, now - 100_000, 0, 1] {
            expect_error(
                || at(stale),
                401,
                "json_oauth1_invalid_timestamp",
                "Invalid timestamp",
            )
            .await;
        }
        // The window is ±900 s, edges included.
        assert_eq!(send(at(now - 900)).await.status, 200);
        assert_eq!(send(at(now + 900)).await.status, 200);

        // Not a positive decimal number.
        for bad in ["abc", "-5", "1.5", " 12", "99999999999999999999999", "0x10"] {
            expect_error(
                || {
                    let call = Call::post(url.clone(), signer.clone());
                    let mut oauth = call.sign(&site);
                    for (name, value) in &mut oauth.params {
                        if name == "oauth_timestamp" {
                            *value = bad.to_owned();
                        }
                    }
                    call.build_with(&oauth)
                },
                401,
                "json_oauth1_invalid_timestamp",
                "Invalid timestamp",
            )
            .await;
        }
        site.cleanup().await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// json_oauth1_nonce_already_used

#[tokio::test]
async fn replays_are_refused() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let consumer = site.consumer(CALLBACK).await;

        // The request-token request.
        let call = Call::post(
            site.url("/oauth1/request"),
            consumer_signer(&consumer).callback(CALLBACK),
        );
        let oauth = call.sign(&site);
        assert_eq!(send(call.build_with(&oauth)).await.status, 200);
        expect_error(
            || call.build_with(&oauth),
            401,
            "json_oauth1_nonce_already_used",
            "Invalid nonce - nonce has already been used",
        )
        .await;

        // A forged request does not burn the nonce: the right signature with the same nonce still works.
        let nonce_value = nonce();
        let now = site.state.now();
        let forged = Signer::new(SHA1, &consumer.key, "wrong")
            .sign("POST", &call.url, &[], &nonce_value, now)
            .unwrap();
        assert_eq!(send(call.build_with(&forged)).await.status, 401);
        let genuine = consumer_signer(&consumer)
            .sign("POST", &call.url, &[], &nonce_value, now)
            .unwrap();
        assert_eq!(send(call.build_with(&genuine)).await.status, 200);
        // The nonce is unique per timestamp: the same nonce one second later is a new request.
        let later = consumer_signer(&consumer)
            .sign("POST", &call.url, &[], &nonce_value, now + 1)
            .unwrap();
        assert_eq!(send(call.build_with(&later)).await.status, 200);

        // The access request. Before approval it verifies (and uses its nonce) but is refused; its replay
        // is a replay.
        let (key, secret) = request_token(&site, &consumer, Some(CALLBACK)).await;
        let early = access_call(&site, &consumer, &key, &secret, "guess");
        let oauth = early.sign(&site);
        let reply = send(
            early
                .build_with(&oauth)
                .header("Accept", "application/json"),
        )
        .await;
        assert_eq!(reply.status, 401);
        assert_eq!(reply.json()["code"], "json_oauth1_unauthorized_token");
        expect_error(
            || early.build_with(&oauth),
            401,
            "json_oauth1_nonce_already_used",
            "Invalid nonce - nonce has already been used",
        )
        .await;
        // A successful exchange replayed: the request token is used up.
        let browser = admin_browser(&site).await;
        let verifier = query_value(&approve(&site, &browser, &key).await, "oauth_verifier");
        let exchange = access_call(&site, &consumer, &key, &secret, &verifier);
        let oauth = exchange.sign(&site);
        let reply = send(exchange.build_with(&oauth)).await;
        let token = reply.form_value("oauth_token");
        let token_secret = reply.form_value("oauth_token_secret");
        expect_error(
            || exchange.build_with(&oauth),
            400,
            "json_oauth1_invalid_token",
            "Invalid token",
        )
        .await;

        // A REST call, with the parameters in the header and in the query.
        for place in [Place::Header, Place::Query] {
            let me = me_call(&site, &consumer, &token, &token_secret).place(place);
            let oauth = me.sign(&site);
            let reply = send(me.build_with(&oauth)).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            assert_eq!(reply.json()["username"], "admin");
            expect_rest_error(me.build_with(&oauth), 401, "json_oauth1_nonce_already_used").await;
        }
        site.cleanup().await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// json_oauth1_invalid_token

#[tokio::test]
async fn invalid_tokens() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let consumer = site.consumer(CALLBACK).await;
        let other = site.consumer(CALLBACK).await;
        let browser = admin_browser(&site).await;

        // An unknown request token at the access endpoint.
        let unknown = access_call(&site, &consumer, "nosuchtoken", "secret", "verifier");
        expect_error(
            || unknown.build(&site),
            400,
            "json_oauth1_invalid_token",
            "Invalid token",
        )
        .await;

        // A request token of another consumer cannot be exchanged, even with its secret and verifier (the
        // WP-API plugin forgets this check).
        let (key, secret) = request_token(&site, &consumer, Some(CALLBACK)).await;
        let verifier = query_value(&approve(&site, &browser, &key).await, "oauth_verifier");
        let stolen = access_call(&site, &other, &key, &secret, &verifier);
        expect_error(
            || stolen.build(&site),
            400,
            "json_oauth1_invalid_token",
            "Invalid token",
        )
        .await;
        // The rightful consumer still can.
        let reply =
            send(access_call(&site, &consumer, &key, &secret, &verifier).build(&site)).await;
        let token = reply.form_value("oauth_token");
        let token_secret = reply.form_value("oauth_token_secret");

        // An access token is not a request token.
        let wrong_kind = access_call(&site, &consumer, &token, &token_secret, &verifier);
        expect_error(
            || wrong_kind.build(&site),
            400,
            "json_oauth1_invalid_token",
            "Invalid token",
        )
        .await;

        // REST calls: unknown token, another consumer's token, a request token.
        expect_rest_error(
            me_call(&site, &consumer, "nosuchtoken", &token_secret).build(&site),
            401,
            "json_oauth1_invalid_token",
        )
        .await;
        expect_rest_error(
            me_call(&site, &other, &token, &token_secret).build(&site),
            401,
            "json_oauth1_invalid_token",
        )
        .await;
        let (pending, pending_secret) = request_token(&site, &consumer, Some(CALLBACK)).await;
        expect_rest_error(
            me_call(&site, &consumer, &pending, &pending_secret).build(&site),
            401,
            "json_oauth1_invalid_token",
        )
        .await;
        let reply = send(me_call(&site, &consumer, &token, &token_secret).build(&site)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);

        // The authorize page with an unknown token, signed in or not, and its form.
        for client in [&browser, &reqwest::Client::new()] {
            let reply =
                send(client.get(site.url("/oauth1/authorize?oauth_token=nosuchtoken"))).await;
            expect_page_error(&reply, 400, "Invalid token");
        }
        let csrf = consent(&site, &browser, &format!("oauth_token={pending}")).await;
        let reply = decide(&site, &browser, &csrf, "nosuchtoken", "authorize").await;
        expect_page_error(&reply, 400, "Invalid token");
        // A used-up request token is gone from the authorize page too.
        let reply =
            send(browser.get(site.url(&format!("/oauth1/authorize?oauth_token={key}")))).await;
        expect_page_error(&reply, 400, "Invalid token");
        site.cleanup().await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// json_oauth1_expired_token

#[tokio::test]
async fn request_tokens_expire_after_a_day() {
    for backend in BACKENDS {
        let clock = Arc::new(FixedClock::new(now()));
        let site = TestSite::start_with(backend, clock.clone() as Arc<dyn Clock>, |_| {}).await;
        let consumer = site.consumer(CALLBACK).await;
        let browser = admin_browser(&site).await;

        let (fresh, fresh_secret) = request_token(&site, &consumer, Some(CALLBACK)).await;
        let (approved, approved_secret) = request_token(&site, &consumer, Some(CALLBACK)).await;
        let verifier = query_value(&approve(&site, &browser, &approved).await, "oauth_verifier");
        let (on_time, on_time_secret) = request_token(&site, &consumer, Some(CALLBACK)).await;
        let on_time_verifier =
            query_value(&approve(&site, &browser, &on_time).await, "oauth_verifier");

        // Exactly 24 h later the tokens still live.
        clock.advance(24 * 3600);
        let reply = send(
            access_call(
                &site,
                &consumer,
                &on_time,
                &on_time_secret,
                &on_time_verifier,
            )
            .build(&site),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);

        // One second more and they are expired: at the access endpoint (approved or not)…
        clock.advance(1);
        let expired = access_call(&site, &consumer, &approved, &approved_secret, &verifier);
        expect_error(
            || expired.build(&site),
            401,
            "json_oauth1_expired_token",
            "OAuth request token has expired",
        )
        .await;
        let expired_unapproved = access_call(&site, &consumer, &fresh, &fresh_secret, "guess");
        expect_error(
            || expired_unapproved.build(&site),
            401,
            "json_oauth1_expired_token",
            "OAuth request token has expired",
        )
        .await;
        // …on the authorize page and its form.
        let reply =
            send(browser.get(site.url(&format!("/oauth1/authorize?oauth_token={fresh}")))).await;
        expect_page_error(&reply, 401, "OAuth request token has expired");
        let csrf = hidden_field(&send(browser.get(site.url("/login"))).await.body, "_csrf");
        let reply = decide(&site, &browser, &csrf, &fresh, "authorize").await;
        expect_page_error(&reply, 401, "OAuth request token has expired");
        site.cleanup().await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// json_oauth1_unauthorized_token, json_oauth1_invalid_verifier

#[tokio::test]
async fn approval_and_verifier_are_required() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let consumer = site.consumer(CALLBACK).await;
        let (key, secret) = request_token(&site, &consumer, Some(CALLBACK)).await;

        let early = access_call(&site, &consumer, &key, &secret, "abcdefghijklmnopqrstuvwx");
        expect_error(
            || early.build(&site),
            401,
            "json_oauth1_unauthorized_token",
            "OAuth token has not been authorized",
        )
        .await;

        let browser = admin_browser(&site).await;
        let verifier = query_value(&approve(&site, &browser, &key).await, "oauth_verifier");
        assert_eq!(verifier.len(), 24);
        assert!(verifier.bytes().all(|b| b.is_ascii_alphanumeric()));
        let mut almost = verifier.clone();
        almost.pop();
        let almost_wrong = format!("{almost}0");
        for wrong in [
            "abcdefghijklmnopqrstuvwx",
            almost.as_str(),
            almost_wrong.as_str(),
            &format!("{verifier}x"),
        ] {
            if wrong == verifier {
                continue;
            }
            let call = access_call(&site, &consumer, &key, &secret, wrong);
            expect_error(
                || call.build(&site),
                400,
                "json_oauth1_invalid_verifier",
                "OAuth verifier does not match",
            )
            .await;
        }
        // Failed attempts do not spend the token.
        let reply =
            send(access_call(&site, &consumer, &key, &secret, &verifier).build(&site)).await;
        assert_eq!(reply.form_value("oauth_token").len(), 24);
        assert_eq!(reply.form_value("oauth_token_secret").len(), 48);
        site.cleanup().await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// json_oauth1_invalid_callback

#[tokio::test]
async fn invalid_callbacks() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let consumer = site.consumer("https://app.example/cb").await;
        let custom = site.consumer("myapp://callback").await;
        let oob = site.consumer("oob").await;

        let bad = [
            (&consumer, "http://app.example/cb"),
            (&consumer, "https://evil.example/cb"),
            (&consumer, "https://app.example:8443/cb"),
            (&consumer, "https://app.example/cb/more"),
            (&consumer, "https://app.example/"),
            (&consumer, "https://user@app.example/cb"),
            (&consumer, "https://app.example.evil.example/cb"),
            (&consumer, "/cb"),
            (&consumer, "not a url"),
            (&consumer, "oob"),
            (&custom, "myapp:callback"),
            (&custom, "otherapp://callback"),
            (&oob, "https://app.example/cb"),
        ];
        for (who, callback) in bad {
            let call = Call::post(
                site.url("/oauth1/request"),
                consumer_signer(who).callback(callback),
            );
            expect_error(
                || call.build(&site),
                400,
                "json_oauth1_invalid_callback",
                "Callback URL is invalid",
            )
            .await;
        }
        // The query may differ; custom schemes and oob match themselves.
        for (who, callback) in [
            (&consumer, "https://app.example/cb?state=xyz"),
            (&consumer, "https://APP.example:443/cb"),
            (&custom, "myapp://callback?x=1"),
            (&oob, "oob"),
        ] {
            request_token(&site, who, Some(callback)).await;
        }

        // On the authorize URL: the same rules, a 400 page, signed in or not, never a 500.
        let (key, _) = request_token(&site, &consumer, Some("https://app.example/cb")).await;
        let browser = admin_browser(&site).await;
        for client in [&browser, &reqwest::Client::new()] {
            for callback in [
                "https://evil.example/cb",
                "not a url",
                "oob",
                "javascript:alert(1)",
                "//evil.example/cb",
            ] {
                let reply = send(client.get(site.url(&format!(
                    "/oauth1/authorize?oauth_token={key}&oauth_callback={}",
                    percent_encode(callback)
                ))))
                .await;
                expect_page_error(&reply, 400, "Callback URL is invalid");
            }
        }
        // The token's callback was not changed by those attempts.
        let location = approve(&site, &browser, &key).await;
        assert!(
            location.starts_with("https://app.example/cb?oauth_token="),
            "{location}"
        );
        site.cleanup().await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// Content types, CORS, methods, parameter placement

#[tokio::test]
async fn content_types_and_cors() {
    let site = TestSite::start(Backend::Sqlite).await;
    let consumer = site.consumer(CALLBACK).await;
    let origin = "https://app.example";

    for path in ["/oauth1/request", "/oauth1/access"] {
        let reply = send(
            reqwest::Client::new()
                .request(reqwest::Method::OPTIONS, site.url(path))
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "POST")
                .header("Access-Control-Request-Headers", "authorization"),
        )
        .await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("access-control-allow-origin"), origin);
        assert!(
            reply
                .header("access-control-allow-headers")
                .to_ascii_lowercase()
                .contains("authorization")
        );
        assert_eq!(reply.header("access-control-allow-credentials"), "true");
    }

    // Success: form-encoded with WordPress's content type, not cached, CORS on it too.
    let call = Call::post(
        site.url("/oauth1/request"),
        consumer_signer(&consumer).callback(CALLBACK),
    );
    let reply = send(call.build(&site).header("Origin", origin)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.content_type(), FORM_TYPE);
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(reply.header("access-control-allow-origin"), origin);
    let pairs = authbroker_oauth1::parse_form(&reply.body).unwrap();
    let names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "oauth_token",
            "oauth_token_secret",
            "oauth_callback_confirmed"
        ]
    );
    let key = reply.form_value("oauth_token");
    assert_eq!(key.len(), 24);
    assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(reply.form_value("oauth_token_secret").len(), 48);

    // Errors: plain text unless JSON is asked for; CORS on them as well, so browser apps can read them.
    let wrong = Call::post(
        site.url("/oauth1/request"),
        Signer::new(SHA1, &consumer.key, "wrong"),
    );
    let reply = send(wrong.build(&site).header("Origin", origin)).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.content_type(), TEXT_TYPE);
    assert_eq!(reply.body, "OAuth signature does not match");
    assert_eq!(reply.header("access-control-allow-origin"), origin);
    let reply = send(
        wrong
            .build(&site)
            .header("Accept", "application/json, text/plain;q=0.5"),
    )
    .await;
    assert_eq!(
        reply.json(),
        serde_json::json!({
            "code": "json_oauth1_signature_mismatch",
            "message": "OAuth signature does not match",
            "data": {"status": 401}
        })
    );
    site.cleanup().await;
}

#[tokio::test]
async fn get_post_and_parameter_placement() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let consumer = site.consumer(CALLBACK).await;
        let browser = admin_browser(&site).await;
        let flows = [
            ("GET", Place::Header),
            ("GET", Place::Query),
            ("POST", Place::Query),
            ("POST", Place::Body),
            ("POST", Place::Header),
        ];
        for (method, place) in flows {
            let context = format!("{backend:?} {method} {place:?}");
            let call = |url: String, signer| {
                let call = if method == "GET" {
                    Call::get(url, signer)
                } else {
                    Call::post(url, signer)
                };
                call.place(place)
            };
            // Unknown extra parameters (clients send callback_url) are signed and ignored.
            let mut request = call(
                site.url("/oauth1/request"),
                consumer_signer(&consumer).callback(CALLBACK),
            );
            if method == "POST" {
                request =
                    request.form(&[("callback_url", "http://127.0.0.1:9/x"), ("foo", "b a*r")]);
            } else {
                request.url.push_str("?callback_url=x&foo=b%20a");
            }
            let reply = send(request.build(&site)).await;
            assert_eq!(reply.status, 200, "{context}: {}", reply.body);
            let key = reply.form_value("oauth_token");
            let secret = reply.form_value("oauth_token_secret");

            let verifier = query_value(&approve(&site, &browser, &key).await, "oauth_verifier");
            let reply = send(
                call(
                    site.url("/oauth1/access"),
                    consumer_signer(&consumer)
                        .token(&key, &secret)
                        .verifier(&verifier),
                )
                .build(&site),
            )
            .await;
            assert_eq!(reply.status, 200, "{context}: {}", reply.body);
            let token = reply.form_value("oauth_token");
            let token_secret = reply.form_value("oauth_token_secret");

            // The REST call (GET with the parameters in the header or the query).
            let rest_place = if place == Place::Body {
                Place::Query
            } else {
                place
            };
            let reply = send(
                me_call(&site, &consumer, &token, &token_secret)
                    .place(rest_place)
                    .build(&site),
            )
            .await;
            assert_eq!(reply.status, 200, "{context}: {}", reply.body);
            assert_eq!(reply.json()["username"], "admin");
        }

        // The `?rest_route=` form of users/me is signed with the URI the client used.
        let (token, token_secret) = connect(&site, &consumer).await;
        let via_query = Call::get(
            site.url("/index.php?rest_route=/wp/v2/users/me"),
            consumer_signer(&consumer).token(&token, &token_secret),
        );
        let reply = send(via_query.build(&site)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.json()["username"], "admin");
        site.cleanup().await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// The authorize page: oob, no callback, cancel, re-approval, callback changed, login first

#[tokio::test]
async fn authorize_page_outcomes() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let consumer = site.consumer(CALLBACK).await;
        let oob = site.consumer("oob").await;
        let browser = admin_browser(&site).await;

        // Not signed in: to the login form, which comes back to the same authorize URL.
        let (key, secret) = request_token(&site, &consumer, Some(CALLBACK)).await;
        let reply =
            send(anonymous().get(site.url(&format!("/oauth1/authorize?oauth_token={key}")))).await;
        assert_eq!(reply.status, 303);
        assert_eq!(
            reply.location(),
            format!("/login?redirect_to=%2Foauth1%2Fauthorize%3Foauth_token%3D{key}")
        );

        // Approve, then the authorize URL again (a reload, a second click): the same redirect.
        let first = approve(&site, &browser, &key).await;
        assert!(first.starts_with(&format!("{CALLBACK}?oauth_token={key}&oauth_verifier=")));
        assert!(first.ends_with("&wp_scope=*"), "{first}");
        let again =
            send(browser.get(site.url(&format!("/oauth1/authorize?oauth_token={key}")))).await;
        assert_eq!(again.status, 303, "{}", again.body);
        assert_eq!(again.location(), first);
        let csrf = hidden_field(&send(browser.get(site.url("/login"))).await.body, "_csrf");
        let twice = decide(&site, &browser, &csrf, &key, "authorize").await;
        assert_eq!(twice.location(), first);
        let verifier = query_value(&first, "oauth_verifier");
        let reply =
            send(access_call(&site, &consumer, &key, &secret, &verifier).build(&site)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);

        // Cancel: back to the app with an access-denied signal; the token is gone.
        let (key, secret) =
            request_token(&site, &consumer, Some(&format!("{CALLBACK}?state=s1"))).await;
        let csrf = consent(&site, &browser, &format!("oauth_token={key}")).await;
        let reply = decide(&site, &browser, &csrf, &key, "cancel").await;
        assert_eq!(reply.status, 303);
        assert_eq!(
            reply.location(),
            format!("{CALLBACK}?state=s1&denied={key}")
        );
        let gone = access_call(&site, &consumer, &key, &secret, "whatever");
        expect_error(
            || gone.build(&site),
            400,
            "json_oauth1_invalid_token",
            "Invalid token",
        )
        .await;

        // A callback given (or changed) on the authorize URL is the one used.
        let (key, _) = request_token(&site, &consumer, Some(CALLBACK)).await;
        let changed = format!("{CALLBACK}?state=changed");
        let csrf = consent(
            &site,
            &browser,
            &format!(
                "oauth_token={key}&oauth_callback={}",
                percent_encode(&changed)
            ),
        )
        .await;
        let reply = decide(&site, &browser, &csrf, &key, "authorize").await;
        assert_eq!(reply.status, 303);
        assert!(
            reply
                .location()
                .starts_with(&format!("{changed}&oauth_token={key}&oauth_verifier=")),
            "{}",
            reply.location()
        );
        let (key, _) = request_token(&site, &consumer, None).await;
        let given = format!("{CALLBACK}?state=given");
        let csrf = consent(
            &site,
            &browser,
            &format!(
                "oauth_token={key}&oauth_callback={}",
                percent_encode(&given)
            ),
        )
        .await;
        let reply = decide(&site, &browser, &csrf, &key, "authorize").await;
        assert!(reply.location().starts_with(&given), "{}", reply.location());

        // `oob`, registered and supplied: a page showing the verifier, which then works.
        for (who, callback) in [(&oob, Some("oob")), (&oob, None), (&consumer, None)] {
            let (key, secret) = request_token(&site, who, callback).await;
            // The consent page says what will happen: a code, not a trip back to a website.
            let page =
                send(browser.get(site.url(&format!("/oauth1/authorize?oauth_token={key}")))).await;
            assert_eq!(page.status, 200, "{}", page.body);
            assert!(
                page.body.contains("<td id=\"callback-host\">no website"),
                "{callback:?}: {}",
                page.body
            );
            let csrf = hidden_field(&page.body, "_csrf");
            let reply = decide(&site, &browser, &csrf, &key, "authorize").await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            assert!(reply.content_type().starts_with("text/html"));
            let start = reply.body.find("<code id=\"code\">").unwrap() + "<code id=\"code\">".len();
            let verifier = &reply.body[start..start + 24];
            assert!(
                verifier.bytes().all(|b| b.is_ascii_alphanumeric()),
                "{}",
                reply.body
            );
            assert_eq!(&reply.body[start + 24..start + 31], "</code>");
            // A reload shows the same code.
            let again =
                send(browser.get(site.url(&format!("/oauth1/authorize?oauth_token={key}")))).await;
            assert_eq!(again.status, 200);
            assert!(again.body.contains(verifier));
            let reply = send(access_call(&site, who, &key, &secret, verifier).build(&site)).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
        }

        // Cancelling an oob authorization: a page, no redirect.
        let (key, _) = request_token(&site, &oob, Some("oob")).await;
        let csrf = consent(&site, &browser, &format!("oauth_token={key}")).await;
        let reply = decide(&site, &browser, &csrf, &key, "cancel").await;
        assert_eq!(reply.status, 200);
        assert!(reply.body.contains("Access denied"), "{}", reply.body);

        // The decision form needs its CSRF field.
        let (key, _) = request_token(&site, &consumer, Some(CALLBACK)).await;
        let reply = decide(&site, &browser, "forged", &key, "authorize").await;
        assert_eq!(reply.status, 403);
        site.cleanup().await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// One user's approval is not another's

#[tokio::test]
async fn an_approved_token_belongs_to_the_approving_user() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let consumer = site.consumer(CALLBACK).await;
        create_user(
            &site.state,
            "bob",
            "Bob Reader",
            "bob@site.example",
            "bob's long password",
            Role::Subscriber,
        )
        .await
        .unwrap();
        let admin = admin_browser(&site).await;
        let bob = site.logged_in("bob", "bob's long password").await;

        let (key, secret) = request_token(&site, &consumer, Some(CALLBACK)).await;
        let approved = approve(&site, &admin, &key).await;
        let verifier = query_value(&approved, "oauth_verifier");

        // Bob, who learnt the token (it travels in URLs), neither sees a consent page for it, nor gets the
        // admin's verifier by approving it, nor can cancel the admin's approval.
        let reply = send(bob.get(site.url(&format!("/oauth1/authorize?oauth_token={key}")))).await;
        expect_page_error(&reply, 400, "Invalid token");
        assert!(!reply.body.contains(&verifier));
        let csrf = hidden_field(&send(bob.get(site.url("/login"))).await.body, "_csrf");
        for decision in ["authorize", "cancel"] {
            let reply = decide(&site, &bob, &csrf, &key, decision).await;
            expect_page_error(&reply, 400, "Invalid token");
            assert!(reply.headers.get("location").is_none(), "{reply:?}");
            assert!(!reply.body.contains(&verifier));
        }

        // The admin's approval stands and gives the admin's account.
        let again =
            send(admin.get(site.url(&format!("/oauth1/authorize?oauth_token={key}")))).await;
        assert_eq!(again.location(), approved);
        let reply =
            send(access_call(&site, &consumer, &key, &secret, &verifier).build(&site)).await;
        let token = reply.form_value("oauth_token");
        let token_secret = reply.form_value("oauth_token_secret");
        let reply = send(me_call(&site, &consumer, &token, &token_secret).build(&site)).await;
        assert_eq!(reply.json()["username"], "admin");
        site.cleanup().await;
    }
}

/// A client without cookies that does not follow redirects.
fn anonymous() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------------------
// OAuth takes precedence over the session cookie

#[tokio::test]
async fn oauth_takes_precedence_over_cookies() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let consumer = site.consumer(CALLBACK).await;
        create_user(
            &site.state,
            "bob",
            "Bob Reader",
            "bob@site.example",
            "bob's long password",
            Role::Subscriber,
        )
        .await
        .unwrap();
        let bob = site.logged_in("bob", "bob's long password").await;
        let me = site.url("/wp-json/wp/v2/users/me");

        // The cookie alone: Bob.
        let reply = send(bob.get(&me)).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["username"], "bob");

        // Admin's OAuth token on Bob's browser: admin.
        let (token, token_secret) = connect(&site, &consumer).await;
        let call = me_call(&site, &consumer, &token, &token_secret);
        let oauth = call.sign(&site);
        let reply = send(
            bob.get(&me)
                .header("Authorization", oauth.to_header_value()),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.json()["username"], "admin");

        // A bad signature with Bob's cookie: refused, not Bob.
        let bad = me_call(&site, &consumer, &token, "wrong").sign(&site);
        expect_rest_error(
            bob.get(&me).header("Authorization", bad.to_header_value()),
            401,
            "json_oauth1_signature_mismatch",
        )
        .await;
        // Half an OAuth request with Bob's cookie: refused too.
        expect_rest_error(
            bob.get(format!("{me}?oauth_token={token}")),
            401,
            "json_oauth1_missing_parameter",
        )
        .await;
        // A replay with Bob's cookie: refused.
        expect_rest_error(
            bob.get(&me)
                .header("Authorization", oauth.to_header_value()),
            401,
            "json_oauth1_nonce_already_used",
        )
        .await;
        site.cleanup().await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// Malformed input: 4xx, never 5xx

#[tokio::test]
async fn malformed_input_is_a_client_error() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let consumer = site.consumer(CALLBACK).await;
        let client = reqwest::Client::new();
        let (token, token_secret) = connect(&site, &consumer).await;
        let paths = [
            "/oauth1/request",
            "/oauth1/access",
            "/wp-json/wp/v2/users/me",
        ];

        let valid = Call::post(site.url("/oauth1/request"), consumer_signer(&consumer))
            .sign(&site)
            .to_header_value();
        let headers = [
            "OAuth oauth_consumer_key".to_owned(),
            "OAuth oauth_consumer_key=".to_owned(),
            "OAuth oauth_consumer_key=\"abc".to_owned(),
            "OAuth oauth_consumer_key=\"a\" oauth_nonce=\"b\"".to_owned(),
            "OAuth =\"x\"".to_owned(),
            "OAuth oauth_nonce=\"%zz\"".to_owned(),
            "OAuth oauth_nonce=\"%ff\"".to_owned(),
            "OAuth oauth_nonce=\"a\", oauth_nonce=\"b\"".to_owned(),
            format!("{valid}, oauth_nonce=\"again\""),
            "OAuth ,,,".to_owned(),
            "OAuth".to_owned(),
        ];
        for path in paths {
            // users/me is a GET route; the OAuth endpoints take both.
            let method = if path.starts_with("/wp-json") {
                "GET"
            } else {
                "POST"
            };
            let request = |url: String| client.request(method.parse().unwrap(), url);
            for header in &headers {
                let reply = send(client.post(site.url(path)).header("Authorization", header)).await;
                let get = send(client.get(site.url(path)).header("Authorization", header)).await;
                for reply in [reply, get] {
                    assert!(
                        (400..500).contains(&reply.status),
                        "{path} {header:?}: {} {}",
                        reply.status,
                        reply.body
                    );
                }
            }
            // Not ASCII.
            let reply = send(
                request(site.url(path)).header(
                    "Authorization",
                    reqwest::header::HeaderValue::from_bytes(b"OAuth oauth_nonce=\"\xe9t\xe9\"")
                        .unwrap(),
                ),
            )
            .await;
            assert_eq!(reply.status, 400, "{path}: {}", reply.body);
            // A form body that is not UTF-8, raw or percent-encoded.
            for body in [
                &b"oauth_nonce=\xff\xfe"[..],
                b"oauth_nonce=%ff%fe",
                b"a=%zz",
            ] {
                let reply = send(
                    request(site.url(path))
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .body(body.to_vec()),
                )
                .await;
                assert_eq!(reply.status, 400, "{path} {body:?}: {}", reply.body);
            }
            // A query that does not decode.
            for query in ["oauth_nonce=%zz", "oauth_nonce=%ff", "a=%"] {
                let reply = send(client.get(site.url(&format!("{path}?{query}")))).await;
                assert_eq!(reply.status, 400, "{path}?{query}: {}", reply.body);
            }
            // A body over 1 MiB: 413, with a length and streamed without one.
            let huge = vec![b'a'; 1024 * 1024 + 1];
            let reply = send(
                request(site.url(path))
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(huge.clone()),
            )
            .await;
            assert_eq!(reply.status, 413, "{path}");
            let status = raw_chunked(&site, method, path, huge).await;
            assert_eq!(status, 413, "{path} chunked");
        }

        // A body just under the limit with a valid signature and unknown parameters is fine.
        let filler = "x".repeat(1000 * 1000);
        let call = Call::post(site.url("/oauth1/request"), consumer_signer(&consumer)).form(&[
            ("filler", &filler),
            ("callback_url", "x"),
            ("zzz", ""),
        ]);
        assert_eq!(send(call.build(&site)).await.status, 200);

        // A JSON body is not signed and does not disturb the signature.
        let oauth = Call::post(site.url("/oauth1/request"), consumer_signer(&consumer)).sign(&site);
        let reply = send(
            client
                .post(site.url("/oauth1/request"))
                .header("Authorization", oauth.to_header_value())
                .json(&serde_json::json!({"oauth_nonce": "x", "callback_url": "y"})),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);

        // The same OAuth parameter in the query and the body is ambiguous: refused.
        let call =
            Call::post(site.url("/oauth1/request"), consumer_signer(&consumer)).place(Place::Query);
        let oauth = call.sign(&site);
        let reply = send(call.build_with(&oauth).form(&[("oauth_nonce", "second")])).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        // The header wins over the query and the body (a client repeating it there is not counted twice).
        let call = Call::post(site.url("/oauth1/request"), consumer_signer(&consumer));
        let oauth = call.sign(&site);
        let reply = send(call.build_with(&oauth).form(&[("oauth_nonce", "second")])).await;
        assert_eq!(reply.status, 200, "{}", reply.body);

        // The REST call still works after all that.
        let reply = send(me_call(&site, &consumer, &token, &token_secret).build(&site)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        site.cleanup().await;
    }
}

/// Sends `body` with `Transfer-Encoding: chunked` (no `Content-Length`) over a plain socket; returns the
/// response status.
async fn raw_chunked(site: &TestSite, method: &str, path: &str, body: Vec<u8>) -> u16 {
    use std::io::{Read, Write};
    let address = site.base.trim_start_matches("http://").to_owned();
    let path = path.to_owned();
    let method = method.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).unwrap();
        for chunk in body.chunks(64 * 1024) {
            // The server may answer and close before the whole body is sent.
            if stream
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .and_then(|()| stream.write_all(chunk))
                .and_then(|()| stream.write_all(b"\r\n"))
                .is_err()
            {
                break;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n");
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let response = String::from_utf8_lossy(&response);
        response
            .split(' ')
            .nth(1)
            .unwrap_or_else(|| panic!("no status line in {response:?}"))
            .parse()
            .unwrap()
    })
    .await
    .unwrap()
}
