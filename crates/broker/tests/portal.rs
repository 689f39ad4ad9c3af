//! The developer portal over real HTTP with a cookie-keeping client, on SQLite and PostgreSQL: sign up, log
//! in, register an app, see and regenerate its secret, its connection log, delete it; CSRF on every form;
//! another developer's app is a 404; administrators suspend apps and developers, and R1 refuses them.
#![allow(clippy::unwrap_used)]

mod portal_support;

use authbroker_broker::apps::{self, ROLE_ADMIN, create_developer};
use authbroker_oauth1::{SignatureMethod, Signer};
use authbroker_testkit::{hidden_field, nonce, now};
use portal_support::*;

#[tokio::test]
async fn a_developer_registers_an_app_and_manages_it() {
    for backend in BACKENDS {
        let broker = TestBroker::start(backend).await;
        let client = browser();

        // Signed out: every portal page leads to the login page, which leads back.
        let response = client.get(broker.url("/apps")).send().await.unwrap();
        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/login?redirect_to=%2Fapps");

        sign_up(&broker, &client, "Dev@App.example", "Pressly Ltd").await;
        let (status, page) = get(&client, &broker.url("/apps?done=welcome")).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Welcome!"), "{page}");
        assert!(page.contains("id=\"no-apps\""), "{page}");
        assert_eq!(element_text(&page, "nav-user"), "Pressly Ltd");

        let client_id = register_app(&broker, &client, "Pressly", "myapp://callback").await;
        assert_eq!(client_id.len(), apps::CLIENT_ID_LEN);
        let (status, page) = get(
            &client,
            &broker.url(&format!("/apps/{client_id}?done=registered")),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("The app is registered."), "{page}");
        assert_eq!(element_text(&page, "client-key"), client_id);
        let secret = element_text(&page, "client-secret");
        assert_eq!(secret.len(), apps::CLIENT_SECRET_LEN);
        assert_eq!(element_text(&page, "app-callback"), "myapp://callback");
        assert_eq!(element_text(&page, "app-status"), "active");
        assert!(page.contains("id=\"no-connections\""), "{page}");
        let stored = app_by_client_id(&broker.state, &client_id).await.unwrap();
        assert_eq!(stored.client_secret, secret);

        // The list shows it.
        let (_, list) = get(&client, &broker.url("/apps")).await;
        assert!(list.contains(&client_id), "{list}");
        assert!(list.contains("Pressly"), "{list}");

        // Regenerate: a new secret on the page and in the registry.
        let token = hidden_field(&page, "_csrf");
        let response = post_form(
            &client,
            &broker.url(&format!("/apps/{client_id}/secret")),
            &token,
            &[],
        )
        .await;
        assert_eq!(response.status(), 303);
        assert_eq!(
            location(&response),
            format!("/apps/{client_id}?done=secret")
        );
        let (_, page) = get(&client, &broker.url(&location(&response))).await;
        let regenerated = element_text(&page, "client-secret");
        assert_ne!(regenerated, secret);
        assert!(
            page.contains("A new client secret was generated."),
            "{page}"
        );
        let stored = app_by_client_id(&broker.state, &client_id).await.unwrap();
        assert_eq!(stored.client_secret, regenerated);

        // The connection log shows what R1 recorded: site, time and result, never credentials.
        apps::log_connection(
            &broker.state,
            &stored.id,
            "https://site.example/",
            "success",
        )
        .await
        .unwrap();
        apps::log_connection(
            &broker.state,
            &stored.id,
            "https://down.example/",
            "ba.timed_out",
        )
        .await
        .unwrap();
        let (_, page) = get(&client, &broker.url(&format!("/apps/{client_id}"))).await;
        assert!(!page.contains("no-connections"), "{page}");
        assert!(page.contains("https://site.example/"), "{page}");
        assert!(page.contains("result-success"), "{page}");
        assert!(page.contains("https://down.example/"), "{page}");
        assert!(page.contains("ba.timed_out"), "{page}");

        // Delete: gone from the list, its page is a 404.
        let response = post_form(
            &client,
            &broker.url(&format!("/apps/{client_id}/delete")),
            &token,
            &[],
        )
        .await;
        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/apps?done=deleted");
        let (_, list) = get(&client, &broker.url("/apps?done=deleted")).await;
        assert!(!list.contains(&client_id), "{list}");
        assert!(list.contains("The app was deleted."), "{list}");
        let (status, _) = get(&client, &broker.url(&format!("/apps/{client_id}"))).await;
        assert_eq!(status, 404);
        assert!(app_by_client_id(&broker.state, &client_id).await.is_none());

        // Log out, then log in again with the email in another case.
        let response = post_form(&client, &broker.url("/logout"), &token, &[]).await;
        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/login");
        let response = client.get(broker.url("/apps")).send().await.unwrap();
        assert_eq!(response.status(), 303, "logged out");
        log_in(&broker, &client, "dev@app.EXAMPLE", PASSWORD).await;
        let (status, _) = get(&client, &broker.url("/apps")).await;
        assert_eq!(status, 200);
        broker.cleanup().await;
    }
}

#[tokio::test]
async fn registration_input_is_checked_and_shown_again() {
    for backend in BACKENDS {
        let broker = TestBroker::start(backend).await;
        let client = browser();
        sign_up(&broker, &client, "dev@app.example", "Dev").await;
        let token = csrf(&client, &broker.url("/apps")).await;
        for (callback, details, why) in [
            ("/relative", "", "callback URL must be an absolute URL"),
            ("myapp:callback", "", "callback URL must be an absolute URL"),
            ("https://user:pw@app.example/cb", "", "callback URL"),
            (
                "https://app.example/cb",
                "ftp://app.example/",
                "details URL",
            ),
            (
                "https://app.example/cb",
                "javascript:alert(1)",
                "details URL",
            ),
            ("", "", "Missing parameter(s): callback_url"),
        ] {
            let response = post_form(
                &client,
                &broker.url("/apps"),
                &token,
                &[
                    ("name", "Typed <name>"),
                    ("callback_url", callback),
                    ("details_url", details),
                ],
            )
            .await;
            assert_eq!(response.status(), 400, "{callback} {details}");
            let page = response.text().await.unwrap();
            assert!(page.contains(why), "{callback}: {page}");
            assert!(
                page.contains("value=\"Typed &#60;name&#62;\"")
                    || page.contains("value=\"Typed &lt;name&gt;\""),
                "{page}"
            );
        }
        // `oob`, custom schemes and loopback ports are fine.
        for callback in ["oob", "myapp://callback", "http://127.0.0.1:8123/cb"] {
            register_app(&broker, &client, "Fine", callback).await;
        }
        let (_, list) = get(&client, &broker.url("/apps")).await;
        assert_eq!(list.matches("<td><a href=\"/apps/").count(), 3, "{list}");
        broker.cleanup().await;
    }
}

#[tokio::test]
async fn every_form_needs_its_csrf_token() {
    for backend in BACKENDS {
        let broker = TestBroker::start(backend).await;
        let client = browser();
        // Without a CSRF cookie and field, nobody can even sign up or log in.
        for path in ["/signup", "/login"] {
            let response = client
                .post(broker.url(path))
                .form(&[
                    ("email", "dev@app.example"),
                    ("name", "Dev"),
                    ("password", PASSWORD),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 403, "{path}");
        }
        sign_up(&broker, &client, "dev@app.example", "Dev").await;
        let client_id = register_app(&broker, &client, "Pressly", "oob").await;
        let before = app_by_client_id(&broker.state, &client_id).await.unwrap();
        let forged = "x".repeat(32);
        for (path, fields) in [
            (
                "/apps".to_owned(),
                vec![("name", "Other"), ("callback_url", "oob")],
            ),
            (format!("/apps/{client_id}/secret"), vec![]),
            (format!("/apps/{client_id}/delete"), vec![]),
            ("/tokens".to_owned(), vec![("label", "x")]),
            ("/tokens/revoke".to_owned(), vec![("token", "x")]),
            ("/logout".to_owned(), vec![]),
        ] {
            // Missing field.
            let response = client
                .post(broker.url(&path))
                .form(&fields)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 403, "{path} without _csrf");
            // A field that does not repeat the cookie.
            let response = post_form(&client, &broker.url(&path), &forged, &fields).await;
            assert_eq!(response.status(), 403, "{path} with a forged _csrf");
            let page = response.text().await.unwrap();
            assert!(page.contains("The form has expired"), "{page}");
        }
        let after = app_by_client_id(&broker.state, &client_id).await.unwrap();
        assert_eq!(after, before, "nothing changed");
        let (_, list) = get(&client, &broker.url("/apps")).await;
        assert!(!list.contains("Other"), "{list}");
        let (status, _) = get(&client, &broker.url("/apps")).await;
        assert_eq!(status, 200, "still signed in");
        broker.cleanup().await;
    }
}

#[tokio::test]
async fn another_developer_cannot_see_or_touch_my_app() {
    for backend in BACKENDS {
        let broker = TestBroker::start(backend).await;
        let alice = browser();
        sign_up(&broker, &alice, "alice@app.example", "Alice").await;
        let client_id = register_app(&broker, &alice, "Alice's app", "oob").await;
        let before = app_by_client_id(&broker.state, &client_id).await.unwrap();

        let mallory = browser();
        sign_up(&broker, &mallory, "mallory@app.example", "Mallory").await;
        let (status, page) = get(&mallory, &broker.url(&format!("/apps/{client_id}"))).await;
        assert_eq!(status, 404);
        assert!(!page.contains(&before.client_secret));
        let token = csrf(&mallory, &broker.url("/apps")).await;
        for action in ["secret", "delete"] {
            let response = post_form(
                &mallory,
                &broker.url(&format!("/apps/{client_id}/{action}")),
                &token,
                &[],
            )
            .await;
            assert_eq!(response.status(), 404, "{action}");
        }
        let (_, list) = get(&mallory, &broker.url("/apps")).await;
        assert!(!list.contains(&client_id));
        // Nor may a developer open the administrators' pages.
        for path in ["/admin/developers", "/admin/apps"] {
            let (status, _) = get(&mallory, &broker.url(path)).await;
            assert_eq!(status, 403, "{path}");
        }
        let response = post_form(
            &mallory,
            &broker.url(&format!("/admin/apps/{client_id}/suspend")),
            &token,
            &[],
        )
        .await;
        assert_eq!(response.status(), 403);
        assert_eq!(
            app_by_client_id(&broker.state, &client_id).await.unwrap(),
            before
        );
        broker.cleanup().await;
    }
}

#[tokio::test]
async fn login_failures_and_duplicate_accounts() {
    for backend in BACKENDS {
        let broker = TestBroker::start(backend).await;
        let client = browser();
        sign_up(&broker, &client, "dev@app.example", "Dev").await;
        let other = browser();
        let token = csrf(&other, &broker.url("/signup")).await;
        let response = post_form(
            &other,
            &broker.url("/signup"),
            &token,
            &[
                ("email", "DEV@app.example"),
                ("name", "Again"),
                ("password", PASSWORD),
            ],
        )
        .await;
        assert_eq!(response.status(), 409);
        assert!(response.text().await.unwrap().contains("already exists"));
        let response = post_form(
            &other,
            &broker.url("/signup"),
            &token,
            &[
                ("email", "new@app.example"),
                ("name", "New"),
                ("password", "short pw"),
            ],
        )
        .await;
        assert_eq!(response.status(), 400);
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("at least 12 characters")
        );

        let token = csrf(&other, &broker.url("/login")).await;
        for (email, password) in [
            ("dev@app.example", "wrong password!"),
            ("nobody@app.example", PASSWORD),
        ] {
            let response = post_form(
                &other,
                &broker.url("/login"),
                &token,
                &[("email", email), ("password", password)],
            )
            .await;
            assert_eq!(response.status(), 401, "{email}");
            let page = response.text().await.unwrap();
            assert!(
                page.contains("Unknown email address or incorrect password."),
                "{page}"
            );
        }
        // Only local paths are followed after logging in.
        let response = post_form(
            &other,
            &broker.url("/login"),
            &token,
            &[
                ("email", "dev@app.example"),
                ("password", PASSWORD),
                ("redirect_to", "https://evil.example/"),
            ],
        )
        .await;
        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/apps");
        broker.cleanup().await;
    }
}

#[tokio::test]
async fn api_tokens_are_shown_once_and_revoked() {
    for backend in BACKENDS {
        let broker = TestBroker::start(backend).await;
        let client = browser();
        sign_up(&broker, &client, "dev@app.example", "Dev").await;
        let token = csrf(&client, &broker.url("/tokens")).await;
        let response = post_form(
            &client,
            &broker.url("/tokens"),
            &token,
            &[("label", "CI deploys")],
        )
        .await;
        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/tokens?done=token-created");
        let (_, page) = get(&client, &broker.url("/tokens?done=token-created")).await;
        let api_token = element_text(&page, "new-token");
        assert!(api_token.starts_with("abt_"), "{api_token}");
        assert!(page.contains("CI deploys"), "{page}");
        // It works on the API…
        let response = reqwest::Client::new()
            .get(broker.url("/api/v1/apps"))
            .bearer_auth(&api_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        // …and is never shown again.
        let (_, page) = get(&client, &broker.url("/tokens")).await;
        assert!(!page.contains(&api_token), "{page}");
        assert!(!page.contains("new-token"), "{page}");
        // The database holds only its SHA-256, which names it for revocation.
        let hash = hidden_field(&page, "token");
        assert_eq!(hash, authbroker_web::session::hash_id(&api_token));
        let response = post_form(
            &client,
            &broker.url("/tokens/revoke"),
            &token,
            &[("token", &hash)],
        )
        .await;
        assert_eq!(response.status(), 303);
        let (_, page) = get(&client, &broker.url("/tokens?done=token-revoked")).await;
        assert!(page.contains("no-tokens"), "{page}");
        let response = reqwest::Client::new()
            .get(broker.url("/api/v1/apps"))
            .bearer_auth(&api_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        broker.cleanup().await;
    }
}

/// Sends R1 signed by `client_id`/`secret`; returns the status and (for refusals) the body.
async fn r1_status(broker: &TestBroker, client_id: &str, secret: &str) -> (u16, serde_json::Value) {
    let url = broker.url("/broker/connect");
    let form = vec![("server_url".to_owned(), "http://127.0.0.1:9/".to_owned())];
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
    let status = response.status().as_u16();
    if status == 200 {
        // Accepted: the body follows once the (unreachable) site fails; do not wait for it.
        return (status, serde_json::Value::Null);
    }
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn administrators_suspend_apps_and_developers_and_r1_refuses_them() {
    for backend in BACKENDS {
        let broker = TestBroker::start(backend).await;
        create_developer(
            &broker.state,
            "admin@broker.example",
            "Admin",
            PASSWORD,
            ROLE_ADMIN,
        )
        .await
        .unwrap();
        let dev = browser();
        sign_up(&broker, &dev, "dev@app.example", "Dev").await;
        let client_id = register_app(&broker, &dev, "Pressly", "oob").await;
        let app = app_by_client_id(&broker.state, &client_id).await.unwrap();
        assert_eq!(
            r1_status(&broker, &client_id, &app.client_secret).await.0,
            200
        );

        let admin = browser();
        log_in(&broker, &admin, "admin@broker.example", PASSWORD).await;
        let (status, page) = get(&admin, &broker.url("/admin/apps")).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains(&client_id), "{page}");
        assert!(page.contains("dev@app.example"), "{page}");
        let token = hidden_field(&page, "_csrf");

        // Suspend the app: R1 signed with it is refused as an unknown consumer.
        let response = post_form(
            &admin,
            &broker.url(&format!("/admin/apps/{client_id}/suspend")),
            &token,
            &[],
        )
        .await;
        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/admin/apps?done=suspended");
        let (status, body) = r1_status(&broker, &client_id, &app.client_secret).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["code"], "json_consumer_notfound", "{body}");
        assert_eq!(body["type"], "json_consumer_notfound", "{body}");
        // The developer sees it suspended.
        let (_, page) = get(&dev, &broker.url(&format!("/apps/{client_id}"))).await;
        assert_eq!(element_text(&page, "app-status"), "suspended");
        assert!(page.contains("app-suspended"), "{page}");

        let response = post_form(
            &admin,
            &broker.url(&format!("/admin/apps/{client_id}/unsuspend")),
            &token,
            &[],
        )
        .await;
        assert_eq!(response.status(), 303);
        assert_eq!(
            r1_status(&broker, &client_id, &app.client_secret).await.0,
            200
        );

        // Suspend the developer: signed out everywhere, cannot log in, their apps cannot connect.
        let (_, page) = get(&admin, &broker.url("/admin/developers")).await;
        let dev_id = {
            let marker = "/admin/developers/";
            let found: Vec<&str> = page
                .match_indices(marker)
                .map(|(i, _)| &page[i + marker.len()..])
                .filter_map(|rest| rest.split_once("/suspend").map(|(id, _)| id))
                .collect();
            assert_eq!(
                found.len(),
                1,
                "only the developer can be suspended: {page}"
            );
            found[0].to_owned()
        };
        let response = post_form(
            &admin,
            &broker.url(&format!("/admin/developers/{dev_id}/suspend")),
            &token,
            &[],
        )
        .await;
        assert_eq!(response.status(), 303);
        let response = dev.get(broker.url("/apps")).send().await.unwrap();
        assert_eq!(response.status(), 303, "the developer's session ended");
        let login_token = csrf(&dev, &broker.url("/login")).await;
        let response = post_form(
            &dev,
            &broker.url("/login"),
            &login_token,
            &[("email", "dev@app.example"), ("password", PASSWORD)],
        )
        .await;
        assert_eq!(response.status(), 403);
        let (status, body) = r1_status(&broker, &client_id, &app.client_secret).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("json_consumer_notfound"))
        );

        let response = post_form(
            &admin,
            &broker.url(&format!("/admin/developers/{dev_id}/unsuspend")),
            &token,
            &[],
        )
        .await;
        assert_eq!(response.status(), 303);
        log_in(&broker, &dev, "dev@app.example", PASSWORD).await;
        assert_eq!(
            r1_status(&broker, &client_id, &app.client_secret).await.0,
            200
        );
        broker.cleanup().await;
    }
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_hardened_cookies() {
    let broker = TestBroker::start_with(Backend::Sqlite, |config| {
        config.home_url = Some("https://broker.example".into());
    })
    .await;
    let response = reqwest::Client::new()
        .get(broker.url("/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert_eq!(headers["cache-control"], "no-store");
    let cookie = headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("ab_csrf="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Lax", "Secure"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    // Plain HTTP home: no Secure (browsers would drop the cookie).
    let plain = TestBroker::start(Backend::Sqlite).await;
    let response = reqwest::Client::new()
        .get(plain.url("/signup"))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!cookie.contains("Secure"), "{cookie}");
    // The JSON API gets nosniff too.
    let response = reqwest::Client::new()
        .get(plain.url("/api/v1/apps"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
}
