//! NUL characters (U+0000) in request input, which PostgreSQL `text` cannot hold: every field gets the
//! endpoint's own 4xx (identifiers, ids, emails, URLs) or loses its NULs (names, descriptions, labels),
//! never a 500. Sent percent-encoded (`%00`) in forms and paths and as `\u0000` in JSON, on SQLite and
//! PostgreSQL: the portal, the JSON API, R1's `server_url` and R5.
#![allow(clippy::unwrap_used)]

mod portal_support;

use authbroker_broker::accounts::sign_up as create_account;
use authbroker_broker::apps::{ROLE_ADMIN, create_developer};
use authbroker_broker::tokens::create_token;
use authbroker_oauth1::{SignatureMethod, Signer};
use authbroker_testkit::{hidden_field, nonce, now};
use portal_support::*;
use serde_json::{Value, json};

/// Submits a form; asserts it was not a server error.
async fn submit(
    client: &reqwest::Client,
    url: &str,
    csrf: &str,
    fields: &[(&str, &str)],
) -> (u16, Option<String>, String) {
    let response = post_form(client, url, csrf, fields).await;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.text().await.unwrap();
    assert!(status < 500, "{url} {fields:?}: {status} {body}");
    (status, location, body)
}

#[tokio::test]
async fn nul_in_portal_forms_is_refused_or_dropped() {
    for backend in BACKENDS {
        let broker = TestBroker::start(backend).await;

        // Sign up: NUL dropped from the name, an email with NUL refused.
        let dev = browser();
        sign_up(&broker, &dev, "dev@app.example", "De\0v").await;
        let (_, page) = get(&dev, &broker.url("/apps")).await;
        assert_eq!(element_text(&page, "nav-user"), "Dev", "{backend:?}");
        let other = browser();
        let token = csrf(&other, &broker.url("/signup")).await;
        let (status, _, page) = submit(
            &other,
            &broker.url("/signup"),
            &token,
            &[
                ("email", "other@app.exam\0ple"),
                ("name", "Other"),
                ("password", PASSWORD),
            ],
        )
        .await;
        assert_eq!(status, 400, "{backend:?}: {page}");
        assert!(page.contains("Enter a valid email address."), "{page}");

        // Log in: an email with NUL is no account's.
        let token = csrf(&other, &broker.url("/login")).await;
        for email in ["dev@app.example\0", "dev\0@app.example"] {
            let (status, _, page) = submit(
                &other,
                &broker.url("/login"),
                &token,
                &[("email", email), ("password", PASSWORD)],
            )
            .await;
            assert_eq!(status, 401, "{backend:?} {email:?}: {page}");
            assert!(
                page.contains("Unknown email address or incorrect password."),
                "{page}"
            );
        }

        // Register an app: NUL dropped from the name and description, URLs with NUL refused.
        let token = csrf(&dev, &broker.url("/apps")).await;
        let (status, location, page) = submit(
            &dev,
            &broker.url("/apps"),
            &token,
            &[
                ("name", "Nul\0 App"),
                ("description", "Desc\0ribed"),
                ("callback_url", "oob"),
            ],
        )
        .await;
        assert_eq!(status, 303, "{backend:?}: {page}");
        let client_id = location
            .unwrap()
            .strip_prefix("/apps/")
            .and_then(|rest| rest.strip_suffix("?done=registered"))
            .unwrap()
            .to_owned();
        let app = app_by_client_id(&broker.state, &client_id).await.unwrap();
        assert_eq!(app.name, "Nul App");
        assert_eq!(app.description, "Described");
        for (callback, details, why) in [
            ("myapp://callback\0", "", "callback URL"),
            ("https://app.example/cb?a=\0", "", "callback URL"),
            ("oob", "https://app.example/about\0", "details URL"),
        ] {
            let (status, _, page) = submit(
                &dev,
                &broker.url("/apps"),
                &token,
                &[
                    ("name", "App"),
                    ("callback_url", callback),
                    ("details_url", details),
                ],
            )
            .await;
            assert_eq!(status, 400, "{backend:?} {callback:?} {details:?}: {page}");
            assert!(page.contains(why), "{page}");
        }

        // A client id with NUL in the URL names no app.
        let (status, _) = get(&dev, &broker.url("/apps/ab%00cd")).await;
        assert_eq!(status, 404, "{backend:?}");
        for action in ["secret", "delete"] {
            let (status, _, _) = submit(
                &dev,
                &broker.url(&format!("/apps/ab%00cd/{action}")),
                &token,
                &[],
            )
            .await;
            assert_eq!(status, 404, "{backend:?} {action}");
        }

        // API tokens: NUL dropped from the label; a token hash with NUL names no token.
        let token_page = csrf(&dev, &broker.url("/tokens")).await;
        let (status, _, _) = submit(
            &dev,
            &broker.url("/tokens"),
            &token_page,
            &[("label", "C\0I deploys")],
        )
        .await;
        assert_eq!(status, 303, "{backend:?}");
        let (_, page) = get(&dev, &broker.url("/tokens")).await;
        assert!(page.contains("CI deploys"), "{page}");
        let (status, _, _) = submit(
            &dev,
            &broker.url("/tokens/revoke"),
            &token_page,
            &[("token", "ab\0cd")],
        )
        .await;
        assert_eq!(status, 404, "{backend:?}");

        // Administrators: ids with NUL name no developer and no app.
        create_developer(
            &broker.state,
            "admin@broker.example",
            "Admin",
            PASSWORD,
            ROLE_ADMIN,
        )
        .await
        .unwrap();
        let admin = browser();
        log_in(&broker, &admin, "admin@broker.example", PASSWORD).await;
        let (_, page) = get(&admin, &broker.url("/admin/apps")).await;
        let token = hidden_field(&page, "_csrf");
        for path in [
            "/admin/developers/ab%00cd/suspend",
            "/admin/developers/ab%00cd/unsuspend",
            "/admin/apps/ab%00cd/suspend",
            "/admin/apps/ab%00cd/unsuspend",
        ] {
            let (status, _, _) = submit(&admin, &broker.url(path), &token, &[]).await;
            assert_eq!(status, 404, "{backend:?} {path}");
        }
        broker.cleanup().await;
    }
}

/// Sends a JSON API request with a bearer token; the status and the JSON body.
async fn call(
    broker: &TestBroker,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, broker.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap();
    assert!(status < 500, "{path}: {status} {body}");
    (status, body)
}

#[tokio::test]
async fn nul_in_the_api_r1_and_r5_is_refused_or_dropped() {
    use reqwest::Method;
    for backend in BACKENDS {
        let broker = TestBroker::start(backend).await;
        let developer = create_account(&broker.state, "dev@app.example", "Dev", PASSWORD)
            .await
            .unwrap();
        let token = create_token(&broker.state, &developer.id, "tests")
            .await
            .unwrap();

        // Creating an app: NUL dropped from the name and description (sent as `\u0000` in JSON)…
        let (status, created) = call(
            &broker,
            &token,
            Method::POST,
            "/api/v1/apps",
            Some(json!({
                "name": "Nul\u{0} App",
                "description": "Desc\u{0}ribed",
                "callback_url": "oob",
            })),
        )
        .await;
        assert_eq!(status, 201, "{backend:?}: {created}");
        assert_eq!(created["name"], "Nul App");
        assert_eq!(created["description"], "Described");
        // …URLs with NUL refused.
        for body in [
            json!({"name": "App", "callback_url": "oob\u{0}"}),
            json!({"name": "App", "callback_url": "myapp://callback\u{0}"}),
            json!({"name": "App", "callback_url": "oob", "details_url": "https://app.example/\u{0}"}),
        ] {
            let (status, reply) = call(
                &broker,
                &token,
                Method::POST,
                "/api/v1/apps",
                Some(body.clone()),
            )
            .await;
            assert_eq!(status, 400, "{backend:?} {body}: {reply}");
            assert_eq!(reply["code"], "rest_invalid_param", "{reply}");
        }
        // A client id with NUL names no app.
        for (method, path) in [
            (Method::GET, "/api/v1/apps/ab%00cd"),
            (Method::DELETE, "/api/v1/apps/ab%00cd"),
            (Method::POST, "/api/v1/apps/ab%00cd/secret"),
        ] {
            let (status, reply) = call(&broker, &token, method.clone(), path, None).await;
            assert_eq!(status, 404, "{backend:?} {method} {path}: {reply}");
            assert_eq!(reply["code"], "rest_not_found", "{reply}");
        }

        // R1: a server_url with NUL is not a URL (URL parsers would quietly strip or escape it).
        let client_id = created["client_id"].as_str().unwrap();
        let secret = created["client_secret"].as_str().unwrap();
        let url = broker.url("/broker/connect");
        for server_url in ["http://127.0.0.1:9/\0", "http://127.0.0.1:9/a\0b"] {
            let form = vec![("server_url".to_owned(), server_url.to_owned())];
            let header = Signer::new(SignatureMethod::HmacSha1, client_id, secret)
                .sign("POST", &url, &form, &nonce(), now())
                .unwrap();
            let response = reqwest::Client::new()
                .post(&url)
                .header("Authorization", header.to_header_value())
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{backend:?} {server_url:?}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["code"], "rest_invalid_param", "{body}");
        }

        // R5: any field with NUL is refused as an invalid verification (form and JSON).
        let fields = [
            ("verifier", "abcdefABCDEF0123456789abcdefABCDEF012345"),
            ("client_id", client_id),
            ("client_token", "abcdefABCDEF"),
            (
                "client_secret",
                "s3cr3tS3CR3Ts3cr3tS3CR3Ts3cr3tS3CR3Ts3cr3tS3CR3",
            ),
        ];
        for i in 0..fields.len() {
            let mut sent: Vec<(&str, String)> =
                fields.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
            sent[i].1.push('\0');
            let form = reqwest::Client::new()
                .post(broker.url("/broker/confirm/"))
                .form(&sent);
            let object: serde_json::Map<String, Value> = sent
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
                .collect();
            let json = reqwest::Client::new()
                .post(broker.url("/broker/confirm/"))
                .json(&object);
            for request in [form, json] {
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 400, "{backend:?} {}", sent[i].0);
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["code"], "ba.invalid_verifier", "{body}");
            }
        }
        broker.cleanup().await;
    }
}
