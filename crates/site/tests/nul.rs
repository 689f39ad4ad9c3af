//! NUL characters (U+0000) in request input, which PostgreSQL `text` cannot hold: every field gets the
//! endpoint's own 4xx (identifiers, ids, URLs) or loses its NULs (names, descriptions), never a 500. Sent
//! percent-encoded (`%00`) in forms, queries and paths and as `\u0000` in JSON, on both backends.
#![allow(clippy::unwrap_used)]

mod common;

use authbroker_oauth1::{SignatureMethod, Signer};
use authbroker_store::sqlx::{self, Row};
use authbroker_testkit::try_request_token;
use common::*;
use serde_json::json;

/// POSTs a form; the status, the `Location` and the body (error pages are HTML, never a 5xx).
async fn post(
    browser: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> (u16, Option<String>, String) {
    let response = browser.post(url).form(form).send().await.unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.text().await.unwrap();
    assert!(status < 500, "{url} {form:?}: {status} {body}");
    (status, location, body)
}

async fn get(browser: &reqwest::Client, url: &str) -> (u16, String) {
    let response = browser.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert!(status < 500, "{url}: {status} {body}");
    (status, body)
}

#[tokio::test]
async fn nul_in_login_oauth_and_rest_input_is_refused() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;

        // The login form: a login with NUL is an unknown login.
        let browser = browser();
        let (_, page) = get(&browser, &site.url("/login")).await;
        let csrf = hidden_field(&page, "_csrf");
        for login in ["ad\0min", "admin\0"] {
            let (status, _, page) = post(
                &browser,
                &site.url("/login"),
                &[
                    ("log", login),
                    ("pwd", &site.admin_password),
                    ("_csrf", &csrf),
                ],
            )
            .await;
            assert_eq!(status, 401, "{backend:?} {login:?}: {page}");
            assert!(
                page.contains("Unknown username or incorrect password."),
                "{page}"
            );
        }

        // `oauth_callback` on /oauth1/request: URL parsers strip a trailing NUL, so it would match the
        // registered callback and then be stored; it is refused instead.
        let consumer = site.consumer(TEST_CALLBACK).await;
        for callback in [
            format!("{TEST_CALLBACK}\0"),
            format!("{TEST_CALLBACK}?state=\0"),
        ] {
            let signer = Signer::new(SignatureMethod::HmacSha1, &consumer.key, &consumer.secret)
                .callback(&callback);
            let (status, code) = try_request_token(&site.base, &signer).await;
            assert_eq!(
                (status, code.as_str()),
                (400, "json_oauth1_invalid_callback"),
                "{backend:?} {callback:?}"
            );
        }
        // …and `oauth_callback` on the authorize page.
        let signer = Signer::new(SignatureMethod::HmacSha1, &consumer.key, &consumer.secret)
            .callback(TEST_CALLBACK);
        let (token, _) = authbroker_testkit::request_token(&site.base, signer).await;
        let admin = site
            .logged_in(&site.admin_login, &site.admin_password)
            .await;
        let (status, page) = get(
            &admin,
            &site.url(&format!(
                "/oauth1/authorize?oauth_token={token}&oauth_callback=http%3A%2F%2F127.0.0.1%3A9%2Fcallback%3Fs%3D%00"
            )),
        )
        .await;
        assert_eq!(status, 400, "{backend:?}: {page}");
        let (status, _) = get(
            &admin,
            &site.url(&format!("/oauth1/authorize?oauth_token={token}")),
        )
        .await;
        assert_eq!(status, 200, "{backend:?}: the token still works");

        // REST: a status with NUL is no status, in the query and in a JSON body.
        let (status, body) = get(
            &browser,
            &site.url("/wp-json/wp/v2/posts?status=publish%00"),
        )
        .await;
        assert_eq!(status, 400, "{backend:?}: {body}");
        let (_, page) = get(&admin, &site.url("/wp-admin/connected-apps")).await;
        let nonce = hidden_field(&page, "_csrf");
        let response = admin
            .post(site.url("/wp-json/wp/v2/posts"))
            .header("X-WP-Nonce", &nonce)
            .json(&json!({"title": "Status", "status": "publish\u{0}"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{backend:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "rest_invalid_param", "{body}");

        // R4: a callback URL with NUL is an invalid callback (JSON and form bodies).
        let response = reqwest::Client::new()
            .post(site.url("/wp-json/broker/v1/connect"))
            .json(&json!({
                "client_id": "app",
                "broker": "https://apps.wp-api.org/",
                "verifier": "abcdef0123456789abcdef0123456789",
                "callback_url": format!("{TEST_CALLBACK}\u{0}"),
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{backend:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "ba.invalid_callback", "{body}");
        site.cleanup().await;
    }
}

#[tokio::test]
async fn nul_in_management_forms_is_refused_or_dropped() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let admin = site
            .logged_in(&site.admin_login, &site.admin_password)
            .await;
        let (_, page) = get(&admin, &site.url("/wp-admin/applications")).await;
        let csrf = hidden_field(&page, "_csrf");

        // Registering an application: NULs dropped from its name and description…
        let (status, location, page) = post(
            &admin,
            &site.url("/wp-admin/applications"),
            &[
                ("_csrf", &csrf),
                ("name", "Nul\0 App"),
                ("description", "Desc\0ribed"),
                ("callback", "oob"),
            ],
        )
        .await;
        assert_eq!(status, 303, "{backend:?}: {page}");
        let location = location.unwrap();
        let id = location
            .strip_prefix("/wp-admin/applications/")
            .and_then(|rest| rest.strip_suffix("?done=registered"))
            .unwrap();
        let row = sqlx::query("SELECT name, description FROM consumers WHERE id = $1")
            .bind(id)
            .fetch_one(site.state.store().pool())
            .await
            .unwrap();
        assert_eq!(row.try_get::<String, _>("name").unwrap(), "Nul App");
        assert_eq!(
            row.try_get::<String, _>("description").unwrap(),
            "Described"
        );
        // …and a callback with NUL refused.
        for callback in ["http://127.0.0.1:9/cb\0", "http://127.0.0.1:9/cb?a=\0"] {
            let (status, _, page) = post(
                &admin,
                &site.url("/wp-admin/applications"),
                &[("_csrf", &csrf), ("name", "App"), ("callback", callback)],
            )
            .await;
            assert_eq!(status, 400, "{backend:?} {callback:?}: {page}");
        }

        // An application id with NUL names no application.
        let (status, _) = get(&admin, &site.url("/wp-admin/applications/ab%00cd")).await;
        assert_eq!(status, 404, "{backend:?}");
        for action in ["regenerate-secret", "block", "unblock", "delete", "rule"] {
            let (status, _, page) = post(
                &admin,
                &site.url(&format!("/wp-admin/applications/ab%00cd/{action}")),
                &[("_csrf", &csrf), ("rule", "deny")],
            )
            .await;
            assert_eq!(status, 404, "{backend:?} {action}: {page}");
        }

        // Revoking a connected app.
        let (status, _, page) = post(
            &admin,
            &site.url("/wp-admin/connected-apps/revoke"),
            &[("_csrf", &csrf), ("consumer_id", "ab\0cd")],
        )
        .await;
        assert_eq!(status, 400, "{backend:?}: {page}");

        // Brokers: adding, removing, removing a rule.
        for (path, fields) in [
            (
                "/wp-admin/brokers",
                [
                    ("broker_id", "https://broker.example/\0"),
                    ("verification_url", "https://broker.example/confirm"),
                ],
            ),
            (
                "/wp-admin/brokers",
                [
                    ("broker_id", "https://broker.example/"),
                    ("verification_url", "https://broker.example/confirm\0"),
                ],
            ),
            (
                "/wp-admin/brokers/remove",
                [
                    ("broker_id", "https://apps.wp-api.org/\0"),
                    ("client_id", ""),
                ],
            ),
            (
                "/wp-admin/brokers/rules/remove",
                [
                    ("broker_id", "https://apps.wp-api.org/"),
                    ("client_id", "app\0"),
                ],
            ),
        ] {
            let mut form = vec![("_csrf", csrf.as_str())];
            form.extend(fields);
            let (status, _, page) = post(&admin, &site.url(path), &form).await;
            assert_eq!(status, 400, "{backend:?} {path} {fields:?}: {page}");
        }
        let (_, page) = get(&admin, &site.url("/wp-admin/brokers")).await;
        assert!(page.contains("https://apps.wp-api.org/"), "{page}");
        assert!(!page.contains("https://broker.example/"), "{page}");
        site.cleanup().await;
    }
}
