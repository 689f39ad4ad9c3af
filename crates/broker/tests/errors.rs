//! R1 and R5 error paths over real HTTP: our broker over TLS (test CA), fake sites on loopback.
//!
//! * R1 authentication failures answer at once with an error object (`status:"error"`, `code` = `type`);
//!   failures after authentication arrive in the held 200 body.
//! * CORS preflight, the trailing-slash route, discovery failures, the site's own refusal (relayed), a site
//!   that never verifies, an unreachable site, a redirect loop and the SSRF guard.
//! * R5: wrong verifier or client, or credentials with NUL (400, and the waiting connection still
//!   succeeds), too late (409), no Content-Type, the `/broker/verify/` alias.
//! * Limits: per app, per site, per client IP (429 + `Retry-After`), and the cap on held connections (503).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use authbroker_broker::apps::App;
use authbroker_testkit::{TestCa, nonce, now};
use axum::extract::Form;
use axum::http::StatusCode;
use axum::response::Redirect;
use axum::routing::{any, get, post};
use common::{
    Broker, Reply, assert_error_object, fake_site, r1, register, register_apps, send, serve,
    sign_r1, start_broker, start_broker_with_peer_addresses, verifying_site,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

fn immediately(_: usize) -> Duration {
    Duration::ZERO
}

/// A site that refuses every connection request with `ba.unknown_broker` (a quick, definite outcome that
/// proves the R1 request got past authentication).
async fn refusing_site() -> String {
    serve(|base| {
        fake_site(
            &base,
            post(|| async {
                (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"code": "ba.unknown_broker", "message": "Broker is not known.", "data": {"status": 400}})),
                )
            }),
        )
    })
    .await
}

/// A site whose connection endpoint records each request's form and answers 202 without verifying.
async fn recording_site() -> (String, mpsc::UnboundedReceiver<HashMap<String, String>>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let base = serve(move |base| {
        fake_site(
            &base,
            post(move |Form(form): Form<HashMap<String, String>>| {
                let _ = sender.send(form);
                async { StatusCode::ACCEPTED }
            }),
        )
    })
    .await;
    (base, receiver)
}

/// Posts an R5 form body to `url`, form-encoded with or without a Content-Type.
async fn r5(
    client: &reqwest::Client,
    url: &str,
    fields: &[(&str, &str)],
    content_type: bool,
) -> Reply {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut request = client.post(url).body(body);
    if content_type {
        request = request.header("content-type", "application/x-www-form-urlencoded");
    }
    send(request).await
}

fn r5_fields<'a>(verifier: &'a str, client_id: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("verifier", verifier),
        ("client_id", client_id),
        ("client_token", "abcdefABCDEF"),
        (
            "client_secret",
            "s3cr3tS3CR3Ts3cr3tS3CR3Ts3cr3tS3CR3Ts3cr3tS3CR3",
        ),
    ]
}

#[track_caller]
fn assert_wp_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    let value = reply.json();
    assert_eq!(value["code"], code, "{value}");
    assert_eq!(value["data"]["status"], status, "{value}");
}

// --- R1 authentication ---------------------------------------------------------------------------------

#[tokio::test]
async fn authentication_failures_are_error_objects() {
    let ca = TestCa::new("errors CA");
    let broker = start_broker(&ca, |_| {}).await;
    let app = register(&broker.state, "Auth").await;
    let site = refusing_site().await;
    let client = ca.client();
    let url = broker.connect_url();
    let form = vec![("server_url".to_owned(), format!("{site}/"))];

    // Unsigned.
    let reply = send(client.post(&url).form(&form)).await;
    assert!(matches!(reply.status, 400 | 401), "{reply:?}");
    assert_error_object(&reply.json(), "json_oauth1_missing_parameter");
    assert!(
        reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );

    // Unknown key.
    let header = sign_r1(&url, "nosuchkey123", "whatever", &form);
    let reply = send(
        client
            .post(&url)
            .header("Authorization", header)
            .form(&form),
    )
    .await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_error_object(&reply.json(), "json_consumer_notfound");

    // Wrong secret.
    let header = sign_r1(&url, &app.client_id, "not the secret", &form);
    let reply = send(
        client
            .post(&url)
            .header("Authorization", header)
            .form(&form),
    )
    .await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_error_object(&reply.json(), "json_oauth1_signature_mismatch");

    // Signed for another server_url than the one sent.
    let header = sign_r1(
        &url,
        &app.client_id,
        &app.client_secret,
        &[("server_url".to_owned(), "https://other.example/".to_owned())],
    );
    let reply = send(
        client
            .post(&url)
            .header("Authorization", header)
            .form(&form),
    )
    .await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_error_object(&reply.json(), "json_oauth1_signature_mismatch");

    // Replay: the same signed request twice.
    let header = sign_r1(&url, &app.client_id, &app.client_secret, &form);
    let first = send(
        client
            .post(&url)
            .header("Authorization", header.clone())
            .form(&form),
    )
    .await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_error_object(&first.json(), "broker.connect.failure");
    let replay = send(
        client
            .post(&url)
            .header("Authorization", header)
            .form(&form),
    )
    .await;
    assert_eq!(replay.status, 401, "{replay:?}");
    assert_error_object(&replay.json(), "json_oauth1_nonce_already_used");

    // Missing server_url (signed, so it is the parameter that is missing, not the signature).
    let header = sign_r1(&url, &app.client_id, &app.client_secret, &[]);
    let reply = send(client.post(&url).header("Authorization", header)).await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_error_object(&reply.json(), "rest_missing_callback_param");
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .contains("server_url")
    );

    // An unparsable server_url.
    let bad = vec![("server_url".to_owned(), "ftp://site.example/".to_owned())];
    let header = sign_r1(&url, &app.client_id, &app.client_secret, &bad);
    let reply = send(client.post(&url).header("Authorization", header).form(&bad)).await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_error_object(&reply.json(), "rest_invalid_param");
    assert!(broker.state.pending().is_empty());
}

#[tokio::test]
async fn server_url_also_in_the_authorization_header_still_verifies() {
    // One real client puts server_url inside the Authorization header as well as in the body; only oauth_*
    // parameters are taken from the header, so it is counted once and the signature holds.
    let ca = TestCa::new("errors CA");
    let broker = start_broker(&ca, |_| {}).await;
    let app = register(&broker.state, "Header").await;
    let (site, issued) = verifying_site(ca.client(), broker.confirm_url(), immediately, None).await;
    let url = broker.connect_url();
    let server_url = format!("{site}/");
    let form = vec![("server_url".to_owned(), server_url.clone())];
    let mut header = authbroker_oauth1::Signer::new(
        authbroker_oauth1::SignatureMethod::HmacSha1,
        &app.client_id,
        &app.client_secret,
    )
    .sign("POST", &url, &form, &nonce(), now())
    .unwrap();
    header.params.push(("server_url".to_owned(), server_url));
    let header = header.to_header_value();
    assert!(header.contains("server_url=\""), "{header}");
    let reply = send(
        ca.client()
            .post(&url)
            .header("Authorization", header)
            .form(&form),
    )
    .await;
    assert_eq!(reply.status, 200);
    let value = reply.json();
    let token = value["client_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{value}"));
    let accepted = issued.accepted.lock().unwrap();
    assert_eq!(accepted[token].0, app.client_id);
    assert_eq!(value["client_secret"], accepted[token].1.as_str());
}

#[tokio::test]
async fn preflight_and_trailing_slash() {
    let ca = TestCa::new("errors CA");
    let broker = start_broker(&ca, |_| {}).await;
    let client = ca.client();
    for path in ["/broker/connect", "/broker/connect/"] {
        let reply = send(
            client
                .request(reqwest::Method::OPTIONS, format!("{}{path}", broker.base))
                .header("Origin", "https://app.example")
                .header("Access-Control-Request-Method", "POST")
                .header("Access-Control-Request-Headers", "authorization"),
        )
        .await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(
            reply.headers["access-control-allow-origin"],
            "https://app.example"
        );
        assert_eq!(
            reply.headers["access-control-allow-headers"],
            "Authorization"
        );
        assert_eq!(reply.headers["access-control-allow-credentials"], "true");
    }

    // POST to the trailing-slash route, signed for that URL, works end to end; error answers carry CORS too.
    let app = register(&broker.state, "Slash").await;
    let (site, _) = verifying_site(ca.client(), broker.confirm_url(), immediately, None).await;
    let url = format!("{}/broker/connect/", broker.base);
    let form = vec![("server_url".to_owned(), site.clone())];
    let header = sign_r1(&url, &app.client_id, &app.client_secret, &form);
    let reply = send(
        client
            .post(&url)
            .header("Authorization", header)
            .header("Origin", "https://app.example")
            .form(&form),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.headers["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(reply.json()["client_token"].as_str().unwrap().len(), 12);
    let reply = send(
        client
            .post(&url)
            .header("Origin", "https://app.example")
            .form(&form),
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.headers["access-control-allow-origin"],
        "https://app.example"
    );
}

// --- Failures in the held body -------------------------------------------------------------------------

/// Runs one signed R1 for `server_url`; asserts the 200 and returns the error object in its body.
async fn held_error(ca: &TestCa, broker: &Broker, app: &App, server_url: &str) -> Value {
    let reply = r1(&ca.client(), broker, app, server_url).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json()
}

#[tokio::test]
async fn discovery_failures() {
    let ca = TestCa::new("errors CA");
    let broker = start_broker(&ca, |_| {}).await;
    let app = register(&broker.state, "Held").await;

    // A web site that is not WordPress: no API link, and the page itself is not a REST index.
    let plain = serve(|_| {
        axum::Router::new().route("/", get(|| async { axum::response::Html("<h1>Hi</h1>") }))
    })
    .await;
    let value = held_error(&ca, &broker, &app, &format!("{plain}/")).await;
    assert_error_object(&value, "not-a-wordpress-site");

    // A REST index without authentication.broker (authentication is [] on a site without auth methods).
    let no_broker = serve(|base| {
        let link = format!("<{base}/wp-json/>; rel=\"https://api.w.org/\"");
        axum::Router::new()
            .route(
                "/",
                any(move || {
                    let link = link.clone();
                    async move { ([("link", link)], "") }
                }),
            )
            .route(
                "/wp-json/",
                get(|| async { axum::Json(json!({"name": "x", "authentication": []})) }),
            )
    })
    .await;
    let value = held_error(&ca, &broker, &app, &format!("{no_broker}/")).await;
    assert_error_object(&value, "broker-auth-not-supported");

    // Nothing listens on the port.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        format!("http://{addr}/")
    };
    let value = held_error(&ca, &broker, &app, &closed).await;
    assert_error_object(&value, "server-error");

    // A redirect loop.
    let looping =
        serve(|_| axum::Router::new().route("/", any(|| async { Redirect::to("/") }))).await;
    let value = held_error(&ca, &broker, &app, &format!("{looping}/")).await;
    assert_error_object(&value, "server-error");
    assert!(
        value["message"].as_str().unwrap().contains("redirect"),
        "{value}"
    );
    assert!(broker.state.pending().is_empty());
}

#[tokio::test]
async fn the_sites_refusal_is_relayed_in_data() {
    let ca = TestCa::new("errors CA");
    let broker = start_broker(&ca, |_| {}).await;
    let app = register(&broker.state, "Held").await;
    let site = refusing_site().await;
    let value = held_error(&ca, &broker, &app, &format!("{site}/")).await;
    assert_error_object(&value, "broker.connect.failure");
    assert_eq!(value["data"]["status"], 400);
    assert_eq!(value["data"]["site_error"]["code"], "ba.unknown_broker");
    assert_eq!(
        value["data"]["site_error"]["message"],
        "Broker is not known."
    );
}

#[tokio::test]
async fn a_site_that_never_verifies_times_out() {
    let ca = TestCa::new("errors CA");
    let broker = start_broker(&ca, |c| c.connect_timeout_secs = 1).await;
    let app = register(&broker.state, "Held").await;
    let (site, mut requests) = recording_site().await;
    let started = Instant::now();
    let value = held_error(&ca, &broker, &app, &format!("{site}/")).await;
    assert_error_object(&value, "ba.timed_out");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(started.elapsed() < Duration::from_secs(5));
    let form = requests.recv().await.unwrap();
    assert_eq!(form["broker"], format!("{}/", broker.base));
    assert!(form["verifier"].len() >= 32);
    assert_eq!(form["callback_url"], common::CALLBACK);
    assert!(broker.state.pending().is_empty());

    // The verification arriving now is too late: 409 ba.timed_out.
    let reply = r5(
        &ca.client(),
        &broker.confirm_url(),
        &r5_fields(&form["verifier"], &form["client_id"]),
        true,
    )
    .await;
    assert_wp_error(&reply, 409, "ba.timed_out");
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let ca = TestCa::new("errors CA");
    let broker = start_broker(&ca, |c| c.allow_loopback_targets = false).await;
    let app = register(&broker.state, "Held").await;
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    let site = serve(move |_| {
        axum::Router::new().fallback(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { "hello" }
        })
    })
    .await;
    let port = site.rsplit(':').next().unwrap().to_owned();
    for target in [
        format!("{site}/"),
        format!("http://localhost:{port}/"),
        format!("http://[::1]:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.1.2.3/".to_owned(),
    ] {
        let value = held_error(&ca, &broker, &app, &target).await;
        assert_error_object(&value, "server-error");
        assert!(
            value["message"].as_str().unwrap().contains("refusing"),
            "{target}: {value}"
        );
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}

// --- R5 -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn wrong_verifications_are_refused_and_the_right_one_still_succeeds() {
    let ca = TestCa::new("errors CA");
    let broker = start_broker(&ca, |_| {}).await;
    let app = register(&broker.state, "R5").await;
    let (site, mut requests) = recording_site().await;
    let client = ca.client();
    let server_url = format!("{site}/");
    let held = r1(&client, &broker, &app, &server_url);
    let site_side = async {
        let form = requests.recv().await.unwrap();
        let verifier = form["verifier"].clone();
        let client_id = form["client_id"].clone();
        assert_eq!(client_id, app.client_id);
        let confirm = broker.confirm_url();

        let wrong_verifier = "x".repeat(40);
        let reply = r5(
            &client,
            &confirm,
            &r5_fields(&wrong_verifier, &client_id),
            true,
        )
        .await;
        assert_wp_error(&reply, 400, "ba.invalid_verifier");
        let reply = r5(
            &client,
            &confirm,
            &r5_fields(&verifier, "someoneelse1"),
            true,
        )
        .await;
        assert_wp_error(&reply, 400, "ba.invalid_verifier");
        let incomplete = r5(&client, &confirm, &[("verifier", verifier.as_str())], true).await;
        assert_wp_error(&incomplete, 400, "ba.invalid_verifier");
        // The right verifier and client with credentials holding NUL (which no site could have stored).
        let mut nul = r5_fields(&verifier, &client_id);
        nul[2].1 = "abcdef\0ABCDEF";
        let reply = r5(&client, &confirm, &nul, true).await;
        assert_wp_error(&reply, 400, "ba.invalid_verifier");
        assert_eq!(broker.state.pending().len(), 1, "still waiting");

        // The right one, form-encoded without a Content-Type (the site plugin may send none).
        let reply = r5(&client, &confirm, &r5_fields(&verifier, &client_id), false).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        // Only once.
        let again = r5(&client, &confirm, &r5_fields(&verifier, &client_id), true).await;
        assert!(matches!(again.status, 400 | 409), "{again:?}");
    };
    let (reply, ()) = tokio::join!(held, site_side);
    assert_eq!(reply.status, 200);
    let value = reply.json();
    assert_eq!(value["client_token"], "abcdefABCDEF", "{value}");
    assert_eq!(
        value["client_secret"],
        "s3cr3tS3CR3Ts3cr3tS3CR3Ts3cr3tS3CR3Ts3cr3tS3CR3"
    );
    assert_eq!(value["api_root"], format!("{site}/wp-json/"));
    assert!(broker.state.pending().is_empty());
}

#[tokio::test]
async fn the_verify_alias_works() {
    let ca = TestCa::new("errors CA");
    let broker = start_broker(&ca, |_| {}).await;
    let app = register(&broker.state, "Alias").await;
    let client = ca.client();
    for alias in ["/broker/verify/", "/broker/verify", "/broker/confirm"] {
        let (site, mut requests) = recording_site().await;
        let server_url = format!("{site}/");
        let held = r1(&client, &broker, &app, &server_url);
        let site_side = async {
            let form = requests.recv().await.unwrap();
            let reply = r5(
                &client,
                &format!("{}{alias}", broker.base),
                &r5_fields(&form["verifier"], &form["client_id"]),
                true,
            )
            .await;
            assert_eq!(reply.status, 200, "{alias}: {reply:?}");
        };
        let (reply, ()) = tokio::join!(held, site_side);
        assert_eq!(reply.json()["client_token"], "abcdefABCDEF", "{alias}");
    }
}

// --- Limits ----------------------------------------------------------------------------------------------

#[track_caller]
fn assert_rate_limited(reply: &Reply) {
    assert_eq!(reply.status, 429, "{reply:?}");
    let retry_after: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let value = reply.json();
    assert_error_object(&value, "server-error");
    assert_eq!(value["data"]["retry_after"], retry_after);
}

#[tokio::test]
async fn per_app_limit_counts_only_verified_requests() {
    let ca = TestCa::new("errors CA");
    let broker = start_broker(&ca, |c| {
        c.rate_limits.per_app_per_minute = 2;
        c.rate_limits.per_server_per_minute = 0;
    })
    .await;
    let apps = register_apps(&broker.state, "Limited", 2).await;
    let (app, other) = (&apps[0], &apps[1]);
    let site = refusing_site().await;
    let client = ca.client();
    let url = broker.connect_url();
    let form = vec![("server_url".to_owned(), format!("{site}/"))];

    // Forgeries with the app's key do not spend its quota.
    for _ in 0..5 {
        let header = sign_r1(&url, &app.client_id, "forged", &form);
        let reply = send(
            client
                .post(&url)
                .header("Authorization", header)
                .form(&form),
        )
        .await;
        assert_eq!(reply.status, 401);
    }
    // Neither do replays of a real request.
    let header = sign_r1(&url, &app.client_id, &app.client_secret, &form);
    let reply = send(
        client
            .post(&url)
            .header("Authorization", header.clone())
            .form(&form),
    )
    .await;
    assert_eq!(reply.status, 200);
    for _ in 0..3 {
        let replay = send(
            client
                .post(&url)
                .header("Authorization", header.clone())
                .form(&form),
        )
        .await;
        assert_eq!(replay.status, 401);
    }
    let reply = r1(&client, &broker, app, &format!("{site}/")).await;
    assert_eq!(reply.status, 200, "second real request");
    let reply = r1(&client, &broker, app, &format!("{site}/")).await;
    assert_rate_limited(&reply);
    // Other apps are not affected.
    let reply = r1(&client, &broker, other, &format!("{site}/")).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn per_site_limit_is_per_host() {
    let ca = TestCa::new("errors CA");
    let broker = start_broker(&ca, |c| {
        c.rate_limits.per_server_per_minute = 2;
    })
    .await;
    let apps = register_apps(&broker.state, "Site", 3).await;
    let site = refusing_site().await;
    let other_site = refusing_site().await;
    let client = ca.client();
    // Different apps, different paths and queries: the same site.
    let reply = r1(&client, &broker, &apps[0], &format!("{site}/")).await;
    assert_eq!(reply.status, 200);
    let reply = r1(&client, &broker, &apps[1], &format!("{site}/blog")).await;
    assert_eq!(reply.status, 200);
    let reply = r1(&client, &broker, &apps[2], &format!("{site}/?x=1")).await;
    assert_rate_limited(&reply);
    let reply = r1(&client, &broker, &apps[2], &format!("{other_site}/")).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn per_ip_limit_applies_before_authentication_and_ignores_forwarded_for() {
    let broker = start_broker_with_peer_addresses(|c| {
        c.rate_limits.per_ip_per_minute = 3;
    })
    .await;
    let client = reqwest::Client::new();
    let url = broker.connect_url();
    let form = [("server_url", "https://site.example/")];
    for i in 0..3 {
        let reply = send(
            client
                .post(&url)
                .header("X-Forwarded-For", format!("198.51.100.{i}"))
                .form(&form),
        )
        .await;
        assert_eq!(reply.status, 401, "unsigned request {i}");
    }
    // Even a spoofed X-Forwarded-For does not escape the limit: the peer is no trusted proxy.
    let reply = send(
        client
            .post(&url)
            .header("X-Forwarded-For", "203.0.113.77")
            .form(&form),
    )
    .await;
    assert_rate_limited(&reply);
    // A preflight is not a connection request.
    let reply = send(client.request(reqwest::Method::OPTIONS, &url)).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_the_client() {
    let broker = start_broker_with_peer_addresses(|c| {
        c.rate_limits.per_ip_per_minute = 1;
        c.rate_limits.trusted_proxies = vec!["127.0.0.0/8".to_owned()];
    })
    .await;
    let client = reqwest::Client::new();
    let url = broker.connect_url();
    let form = [("server_url", "https://site.example/")];
    let from = |ip: &str| {
        client
            .post(&url)
            .header("X-Forwarded-For", format!("{ip}, 127.0.0.1"))
            .form(&form)
    };
    assert_eq!(send(from("198.51.100.1")).await.status, 401);
    assert_eq!(send(from("198.51.100.2")).await.status, 401);
    assert_rate_limited(&send(from("198.51.100.1")).await);
}

#[tokio::test]
async fn the_ip_limit_applies_behind_the_production_tls_listener() {
    // The TLS listener of authbroker-web exposes each connection's peer address, so the per-IP limit works
    // in production, not only under axum's own listener.
    let ca = TestCa::new("errors CA");
    let broker = start_broker(&ca, |c| c.rate_limits.per_ip_per_minute = 1).await;
    let client = ca.client();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let reply = send(
            client
                .post(broker.connect_url())
                .form(&[("server_url", "https://site.example/")]),
        )
        .await;
        statuses.push(reply.status);
    }
    assert_eq!(statuses, [401, 429, 429]);
}

#[tokio::test]
async fn the_cap_on_held_connections_answers_503() {
    let ca = TestCa::new("errors CA");
    let broker = start_broker(&ca, |c| {
        c.max_held_connections = 1;
        c.connect_timeout_secs = 2;
    })
    .await;
    let app = register(&broker.state, "Busy").await;
    let (silent, _requests) = recording_site().await;
    let client = ca.client();
    // The first connection is held (its site never verifies); the headers arrive at once.
    let url = broker.connect_url();
    let form = vec![("server_url".to_owned(), format!("{silent}/"))];
    let header = sign_r1(&url, &app.client_id, &app.client_secret, &form);
    let first = client
        .post(&url)
        .header("Authorization", header)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let second = r1(&client, &broker, &app, &format!("{silent}/")).await;
    assert_eq!(second.status, 503, "{second:?}");
    assert_error_object(&second.json(), "server-error");
    let first: Value = first.json().await.unwrap();
    assert_error_object(&first, "ba.timed_out");
    // The slot is free again (once the first connection's task has finished).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (site, _) = verifying_site(ca.client(), broker.confirm_url(), immediately, None).await;
    let third = r1(&client, &broker, &app, &format!("{site}/")).await;
    assert_eq!(third.status, 200);
    assert_eq!(third.json()["client_token"].as_str().unwrap().len(), 12);
}
