//! The management pages driven like a browser: connected applications and revoking them, registering and
//! administering applications, brokers and their rules, and who may do what. Both backends.
#![allow(clippy::unwrap_used)]

mod common;

use authbroker_oauth1::{SignatureMethod, Signer};
use authbroker_site::{NewConsumer, Role, create_user, register_consumer};
use authbroker_store::sqlx::{self, Row};
use common::*;

const CALLBACK: &str = "http://127.0.0.1:9/callback";

/// A signed `GET /wp-json/wp/v2/users/me` with an access token; the status.
async fn users_me(site: &TestSite, key: &str, secret: &str, access: &AccessToken) -> u16 {
    let signer =
        Signer::new(SignatureMethod::HmacSha1, key, secret).token(&access.token, &access.secret);
    signed("GET", &site.url("/wp-json/wp/v2/users/me"), &signer)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A signed `POST /oauth1/request` asking for JSON errors; the status and the error code (if any).
async fn request_token(site: &TestSite, key: &str, secret: &str) -> (u16, String) {
    let signer = Signer::new(SignatureMethod::HmacSha1, key, secret).callback(CALLBACK);
    authbroker_testkit::try_request_token(&site.base, &signer).await
}

/// GET a page; status and body.
async fn get(browser: &reqwest::Client, url: &str) -> (u16, String) {
    let response = browser.get(url).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// POST a form; status, `Location` and body.
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
    let is_html = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/html"));
    let body = response.text().await.unwrap();
    if status >= 400 {
        assert!(is_html, "errors are pages: {status} {body}");
    }
    (status, location, body)
}

/// The text of the element with this id (`<code id="consumer-key">…</code>`).
fn text_by_id(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in page:\n{html}"))
        + marker.len();
    let end = html[start..].find('<').unwrap() + start;
    html[start..end].to_owned()
}

/// A signed-in browser and its CSRF token.
async fn signed_in(site: &TestSite, login: &str, password: &str) -> (reqwest::Client, String) {
    let browser = site.logged_in(login, password).await;
    let (status, page) = get(&browser, &site.url("/wp-admin/connected-apps")).await;
    assert_eq!(status, 200, "{page}");
    let csrf = hidden_field(&page, "_csrf");
    (browser, csrf)
}

#[tokio::test]
async fn connected_apps_show_one_row_per_app_and_revoke_it() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let app = site.consumer(CALLBACK).await;
        let other = register_consumer(
            &site.state,
            NewConsumer {
                name: "Other App",
                description: "",
                callback: CALLBACK,
            },
        )
        .await
        .unwrap();
        let first = site.three_legged(&app, SignatureMethod::HmacSha1).await;
        let second = site.three_legged(&app, SignatureMethod::HmacSha256).await;
        let kept = site.three_legged(&other, SignatureMethod::HmacSha1).await;
        assert_eq!(users_me(&site, &app.key, &app.secret, &first).await, 200);

        let (browser, csrf) = signed_in(&site, &site.admin_login, &site.admin_password).await;
        let (status, page) = get(&browser, &site.url("/wp-admin/connected-apps")).await;
        assert_eq!(status, 200, "{backend:?}");
        assert_eq!(
            page.matches("class=\"connected-app\"").count(),
            2,
            "{backend:?}: one row per app, not per token:\n{page}"
        );
        assert_eq!(page.matches("An app used by the tests").count(), 1);
        assert!(page.contains("Other App"));
        assert!(page.contains("registered directly"));
        assert!(page.contains(" UTC</td>"), "{page}");
        assert!(page.contains(&format!("id=\"app-{}\"", app.id)));

        // Without the CSRF field nothing happens.
        let (status, _, _) = post(
            &browser,
            &site.url("/wp-admin/connected-apps/revoke"),
            &[("consumer_id", &app.id)],
        )
        .await;
        assert_eq!(status, 403, "{backend:?}");
        assert_eq!(users_me(&site, &app.key, &app.secret, &second).await, 200);

        let (status, location, _) = post(
            &browser,
            &site.url("/wp-admin/connected-apps/revoke"),
            &[("_csrf", &csrf), ("consumer_id", &app.id)],
        )
        .await;
        assert_eq!(status, 303, "{backend:?}");
        assert_eq!(
            location.as_deref(),
            Some("/wp-admin/connected-apps?done=revoked")
        );
        assert_eq!(users_me(&site, &app.key, &app.secret, &first).await, 401);
        assert_eq!(users_me(&site, &app.key, &app.secret, &second).await, 401);
        assert_eq!(
            users_me(&site, &other.key, &other.secret, &kept).await,
            200,
            "{backend:?}: other apps stay connected"
        );

        let (_, page) = get(&browser, &site.url("/wp-admin/connected-apps?done=revoked")).await;
        assert_eq!(page.matches("class=\"connected-app\"").count(), 1);
        assert!(!page.contains(&format!("id=\"app-{}\"", app.id)));
        assert!(page.contains("id=\"notice\""));
        let (status, page) = get(
            &browser,
            &site.url("/wp-admin/connected-apps?done=revoked&done=<b>"),
        )
        .await;
        assert_eq!(
            status, 200,
            "a malformed notice query only loses the notice"
        );
        assert!(!page.contains("id=\"notice\""));

        // Revoking again is harmless.
        let (status, _, _) = post(
            &browser,
            &site.url("/wp-admin/connected-apps/revoke"),
            &[("_csrf", &csrf), ("consumer_id", &app.id)],
        )
        .await;
        assert_eq!(status, 303);
        site.cleanup().await;
    }
}

#[tokio::test]
async fn admins_register_regenerate_block_and_delete_applications() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let (browser, csrf) = signed_in(&site, &site.admin_login, &site.admin_password).await;
        let (status, page) = get(&browser, &site.url("/wp-admin/applications")).await;
        assert_eq!(status, 200, "{backend:?}");
        assert!(page.contains("id=\"no-applications\""));

        // A bad callback is refused with an error page.
        let (status, _, page) = post(
            &browser,
            &site.url("/wp-admin/applications"),
            &[
                ("_csrf", &csrf),
                ("name", "Bad"),
                ("description", ""),
                ("callback", "not a url"),
            ],
        )
        .await;
        assert_eq!(status, 400, "{backend:?}: {page}");
        assert!(page.contains("callback"), "{page}");

        let (status, location, _) = post(
            &browser,
            &site.url("/wp-admin/applications"),
            &[
                ("_csrf", &csrf),
                ("name", "Hand Made"),
                ("description", "Registered through the form"),
                ("callback", CALLBACK),
            ],
        )
        .await;
        assert_eq!(status, 303, "{backend:?}");
        let location = location.unwrap();
        let (path, query) = location.split_once('?').unwrap();
        assert_eq!(query, "done=registered");
        let id = path
            .strip_prefix("/wp-admin/applications/")
            .unwrap()
            .to_owned();
        let detail = site.url(path);
        let (status, page) = get(&browser, &site.url(&location)).await;
        assert_eq!(status, 200);
        assert_eq!(text_by_id(&page, "app-name"), "Hand Made");
        let key = text_by_id(&page, "consumer-key");
        let secret = text_by_id(&page, "consumer-secret");
        assert_eq!(key.len(), 12);
        assert_eq!(secret.len(), 48);
        assert_eq!(text_by_id(&page, "app-status"), "active");
        assert!(page.contains("part of every signature"));
        assert_eq!(request_token(&site, &key, &secret).await.0, 200);

        // A user connects it; the list counts them.
        let consumer = authbroker_site::Consumer {
            id: id.clone(),
            key: key.clone(),
            secret: secret.clone(),
            name: "Hand Made".into(),
            description: String::new(),
            callback: CALLBACK.into(),
            broker_id: None,
            broker_client_id: None,
            details_url: None,
            status: "active".into(),
        };
        let token = site
            .three_legged(&consumer, SignatureMethod::HmacSha1)
            .await;
        let (_, list) = get(&browser, &site.url("/wp-admin/applications")).await;
        assert_eq!(list.matches("class=\"application\"").count(), 1);
        assert!(list.contains("<td class=\"app-users\">1</td>"), "{list}");
        assert!(list.contains(&format!("href=\"/wp-admin/applications/{id}\"")));

        // Regenerating the secret stops the old one; granted access works with the new one.
        let (status, location, _) = post(
            &browser,
            &format!("{detail}/regenerate-secret"),
            &[("_csrf", &csrf)],
        )
        .await;
        assert_eq!(status, 303, "{backend:?}");
        assert_eq!(location.unwrap(), format!("{path}?done=secret"));
        let (_, page) = get(&browser, &detail).await;
        let new_secret = text_by_id(&page, "consumer-secret");
        assert_eq!(new_secret.len(), 48);
        assert_ne!(new_secret, secret);
        assert_eq!(text_by_id(&page, "consumer-key"), key);
        assert_eq!(
            request_token(&site, &key, &secret).await,
            (401, "json_oauth1_signature_mismatch".to_owned()),
            "{backend:?}"
        );
        assert_eq!(request_token(&site, &key, &new_secret).await.0, 200);
        assert_eq!(users_me(&site, &key, &secret, &token).await, 401);
        assert_eq!(users_me(&site, &key, &new_secret, &token).await, 200);

        // Blocked: refused everywhere; unblocked: back.
        let (status, location, _) =
            post(&browser, &format!("{detail}/block"), &[("_csrf", &csrf)]).await;
        assert_eq!(status, 303);
        assert_eq!(location.unwrap(), format!("{path}?done=blocked"));
        assert_eq!(
            request_token(&site, &key, &new_secret).await,
            (401, "json_consumer_notfound".to_owned()),
            "{backend:?}"
        );
        assert_eq!(users_me(&site, &key, &new_secret, &token).await, 401);
        let (_, page) = get(&browser, &detail).await;
        assert_eq!(text_by_id(&page, "app-status"), "blocked");
        assert!(page.contains("id=\"unblock\""));
        assert!(!page.contains("id=\"block\""));
        let (status, location, _) =
            post(&browser, &format!("{detail}/unblock"), &[("_csrf", &csrf)]).await;
        assert_eq!(status, 303);
        assert_eq!(location.unwrap(), format!("{path}?done=unblocked"));
        assert_eq!(request_token(&site, &key, &new_secret).await.0, 200);
        assert_eq!(users_me(&site, &key, &new_secret, &token).await, 200);

        // Deleted: gone, with its tokens.
        let (status, location, _) =
            post(&browser, &format!("{detail}/delete"), &[("_csrf", &csrf)]).await;
        assert_eq!(status, 303);
        assert_eq!(
            location.as_deref(),
            Some("/wp-admin/applications?done=deleted")
        );
        let (status, _) = get(&browser, &detail).await;
        assert_eq!(status, 404, "{backend:?}");
        assert_eq!(
            request_token(&site, &key, &new_secret).await,
            (401, "json_consumer_notfound".to_owned())
        );
        assert_eq!(users_me(&site, &key, &new_secret, &token).await, 401);
        let tokens: i64 = sqlx::query("SELECT COUNT(*) AS n FROM access_tokens")
            .fetch_one(site.state.store().pool())
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        assert_eq!(tokens, 0);
        let (status, _, _) = post(&browser, &format!("{detail}/block"), &[("_csrf", &csrf)]).await;
        assert_eq!(status, 404);
        site.cleanup().await;
    }
}

#[tokio::test]
async fn brokers_are_added_checked_and_removed() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let (browser, csrf) = signed_in(&site, &site.admin_login, &site.admin_password).await;
        let brokers = site.url("/wp-admin/brokers");
        let (status, page) = get(&browser, &brokers).await;
        assert_eq!(status, 200, "{backend:?}");
        assert!(page.contains("<code class=\"broker-id\">https://apps.wp-api.org/</code>"));

        for (broker_id, verification_url) in [
            ("http://broker.example/", "https://broker.example/confirm"),
            ("https://broker.example", "https://broker.example/confirm"),
            ("broker.example/", "https://broker.example/confirm"),
            ("https://broker.example/", "http://broker.example/confirm"),
            ("https://broker.example/", "/broker/confirm"),
            ("https://broker.example/", ""),
        ] {
            let (status, _, page) = post(
                &browser,
                &brokers,
                &[
                    ("_csrf", &csrf),
                    ("broker_id", broker_id),
                    ("verification_url", verification_url),
                ],
            )
            .await;
            assert_eq!(
                status, 400,
                "{backend:?} {broker_id} {verification_url}: {page}"
            );
        }

        let (status, location, _) = post(
            &browser,
            &brokers,
            &[
                ("_csrf", &csrf),
                ("broker_id", "https://broker.example/"),
                ("verification_url", "https://broker.example/broker/confirm/"),
            ],
        )
        .await;
        assert_eq!(status, 303, "{backend:?}");
        assert_eq!(
            location.as_deref(),
            Some("/wp-admin/brokers?done=broker-added")
        );
        let (_, page) = get(&browser, &brokers).await;
        assert!(page.contains("<code class=\"broker-id\">https://broker.example/</code>"));
        assert!(page.contains("https://broker.example/broker/confirm/"));
        let stored: String =
            sqlx::query("SELECT verification_url FROM known_brokers WHERE broker_id = $1")
                .bind("https://broker.example/")
                .fetch_one(site.state.store().pool())
                .await
                .unwrap()
                .try_get("verification_url")
                .unwrap();
        assert_eq!(stored, "https://broker.example/broker/confirm/");

        // The same broker twice is refused.
        let (status, _, _) = post(
            &browser,
            &brokers,
            &[
                ("_csrf", &csrf),
                ("broker_id", "https://broker.example/"),
                ("verification_url", "https://elsewhere.example/confirm"),
            ],
        )
        .await;
        assert_eq!(status, 409);

        let (status, location, _) = post(
            &browser,
            &site.url("/wp-admin/brokers/remove"),
            &[("_csrf", &csrf), ("broker_id", "https://broker.example/")],
        )
        .await;
        assert_eq!(status, 303);
        assert_eq!(
            location.as_deref(),
            Some("/wp-admin/brokers?done=broker-removed")
        );
        let (_, page) = get(&browser, &brokers).await;
        assert!(!page.contains("https://broker.example/"));
        assert!(page.contains("https://apps.wp-api.org/"));
        site.cleanup().await;
    }
}

#[tokio::test]
async fn brokered_apps_get_allow_and_deny_rules() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let pool = site.state.store().pool();
        sqlx::query(
            "INSERT INTO consumers (id, consumer_key, consumer_secret, name, description, callback, broker_id, broker_client_id, details_url, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind("brokeredapp")
        .bind("BrokeredKey1")
        .bind("s".repeat(48))
        .bind("Brokered App")
        .bind("Came through a broker")
        .bind(CALLBACK)
        .bind("https://apps.wp-api.org/")
        .bind("client-7")
        .bind("https://apps.wp-api.org/apps/7")
        .bind("active")
        .bind(now())
        .execute(pool)
        .await
        .unwrap();
        let rule = || async {
            sqlx::query("SELECT rule FROM client_rules WHERE broker_id = $1 AND client_id = $2")
                .bind("https://apps.wp-api.org/")
                .bind("client-7")
                .fetch_optional(pool)
                .await
                .unwrap()
                .map(|row| row.try_get::<String, _>("rule").unwrap())
        };

        let (browser, csrf) = signed_in(&site, &site.admin_login, &site.admin_password).await;
        let (_, list) = get(&browser, &site.url("/wp-admin/applications")).await;
        assert!(
            list.contains("<code>https://apps.wp-api.org/</code>"),
            "{list}"
        );
        assert!(list.contains("href=\"https://apps.wp-api.org/apps/7\""));
        let detail = site.url("/wp-admin/applications/brokeredapp");
        let (status, page) = get(&browser, &detail).await;
        assert_eq!(status, 200, "{backend:?}");
        assert!(page.contains("Always allow this app from this broker"));
        assert!(page.contains("Deny this app from this broker"));
        assert_eq!(text_by_id(&page, "app-client-id"), "client-7");

        let (status, location, _) = post(
            &browser,
            &format!("{detail}/rule"),
            &[("_csrf", &csrf), ("rule", "deny")],
        )
        .await;
        assert_eq!(status, 303, "{backend:?}");
        assert_eq!(
            location.as_deref(),
            Some("/wp-admin/applications/brokeredapp?done=denied")
        );
        assert_eq!(rule().await.as_deref(), Some("deny"));
        let (status, location, _) = post(
            &browser,
            &format!("{detail}/rule"),
            &[("_csrf", &csrf), ("rule", "allow")],
        )
        .await;
        assert_eq!(status, 303);
        assert_eq!(
            location.as_deref(),
            Some("/wp-admin/applications/brokeredapp?done=allowed")
        );
        assert_eq!(rule().await.as_deref(), Some("allow"));
        let (_, page) = get(&browser, &detail).await;
        assert!(
            page.contains("Current rule: <strong>allow</strong>"),
            "{page}"
        );
        let (status, _, _) = post(
            &browser,
            &format!("{detail}/rule"),
            &[("_csrf", &csrf), ("rule", "maybe")],
        )
        .await;
        assert_eq!(status, 400);

        let (_, page) = get(&browser, &site.url("/wp-admin/brokers")).await;
        assert!(
            page.contains("<code class=\"rule-client-id\">client-7</code>"),
            "{page}"
        );
        assert!(page.contains("<td class=\"rule-value\">allow</td>"));
        let (status, location, _) = post(
            &browser,
            &site.url("/wp-admin/brokers/rules/remove"),
            &[
                ("_csrf", &csrf),
                ("broker_id", "https://apps.wp-api.org/"),
                ("client_id", "client-7"),
            ],
        )
        .await;
        assert_eq!(status, 303);
        assert_eq!(
            location.as_deref(),
            Some("/wp-admin/brokers?done=rule-removed")
        );
        assert_eq!(rule().await, None);
        let (_, page) = get(&browser, &site.url("/wp-admin/brokers")).await;
        assert!(page.contains("id=\"no-rules\""));

        // Directly registered apps have no broker to set rules at.
        let direct = site.consumer(CALLBACK).await;
        let (status, _, _) = post(
            &browser,
            &site.url(&format!("/wp-admin/applications/{}/rule", direct.id)),
            &[("_csrf", &csrf), ("rule", "deny")],
        )
        .await;
        assert_eq!(status, 400);
        site.cleanup().await;
    }
}

#[tokio::test]
async fn pages_are_for_signed_in_users_and_admin_pages_for_admins() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let app = site.consumer(CALLBACK).await;
        let detail = format!("/wp-admin/applications/{}", app.id);

        // Signed out: to the login page, and back after it.
        let anonymous = browser();
        for path in [
            "/wp-admin/connected-apps",
            "/wp-admin/applications",
            "/wp-admin/brokers",
            detail.as_str(),
        ] {
            let response = anonymous.get(site.url(path)).send().await.unwrap();
            assert_eq!(response.status(), 303, "{backend:?} {path}");
            let location = response.headers()["location"].to_str().unwrap();
            assert_eq!(
                location,
                format!(
                    "/login?redirect_to={}",
                    authbroker_oauth1::percent_encode(path)
                )
            );
        }
        let (_, login) = get(&anonymous, &site.url("/login")).await;
        let csrf = hidden_field(&login, "_csrf");
        let (status, location, _) = post(
            &anonymous,
            &site.url(&format!("{detail}/block")),
            &[("_csrf", &csrf)],
        )
        .await;
        assert_eq!(status, 303);
        assert!(location.unwrap().starts_with("/login?redirect_to="));
        let response = anonymous.get(site.url("/wp-admin/")).send().await.unwrap();
        assert_eq!(response.headers()["location"], "/wp-admin/connected-apps");

        // A subscriber sees their own connections only.
        create_user(
            &site.state,
            "sub",
            "Sam Subscriber",
            "sub@site.example",
            "subscriber password",
            Role::Subscriber,
        )
        .await
        .unwrap();
        let (subscriber, csrf) = signed_in(&site, "sub", "subscriber password").await;
        let (status, page) = get(&subscriber, &site.url("/wp-admin/connected-apps")).await;
        assert_eq!(status, 200);
        assert!(page.contains("id=\"no-apps\""));
        assert!(page.contains("Sam Subscriber"));
        assert!(!page.contains("/wp-admin/applications"));
        assert!(!page.contains("/wp-admin/brokers"));
        for path in [
            "/wp-admin/applications",
            "/wp-admin/brokers",
            detail.as_str(),
        ] {
            let (status, page) = get(&subscriber, &site.url(path)).await;
            assert_eq!(status, 403, "{backend:?} {path}: {page}");
        }
        for (path, form) in [
            (format!("{detail}/block"), vec![("_csrf", csrf.as_str())]),
            (
                format!("{detail}/regenerate-secret"),
                vec![("_csrf", csrf.as_str())],
            ),
            (format!("{detail}/delete"), vec![("_csrf", csrf.as_str())]),
            (
                "/wp-admin/applications".to_owned(),
                vec![
                    ("_csrf", csrf.as_str()),
                    ("name", "Sneaky"),
                    ("callback", CALLBACK),
                ],
            ),
            (
                "/wp-admin/brokers".to_owned(),
                vec![
                    ("_csrf", csrf.as_str()),
                    ("broker_id", "https://evil.example/"),
                    ("verification_url", "https://evil.example/confirm"),
                ],
            ),
        ] {
            let (status, _, _) = post(&subscriber, &site.url(&path), &form).await;
            assert_eq!(status, 403, "{backend:?} {path}");
        }
        assert_eq!(request_token(&site, &app.key, &app.secret).await.0, 200);

        // An administrator without (or with the wrong) CSRF field changes nothing.
        let (admin, csrf) = signed_in(&site, &site.admin_login, &site.admin_password).await;
        let wrong = "x".repeat(32);
        for form in [vec![], vec![("_csrf", wrong.as_str())]] {
            for path in ["block", "regenerate-secret", "delete"] {
                let (status, _, _) =
                    post(&admin, &site.url(&format!("{detail}/{path}")), &form).await;
                assert_eq!(status, 403, "{backend:?} {path}");
            }
        }
        let (status, _, _) = post(
            &admin,
            &site.url("/wp-admin/brokers"),
            &[
                ("broker_id", "https://evil.example/"),
                ("verification_url", "https://evil.example/confirm"),
            ],
        )
        .await;
        assert_eq!(status, 403);
        assert_eq!(request_token(&site, &app.key, &app.secret).await.0, 200);
        let (_, page) = get(&admin, &site.url("/wp-admin/brokers")).await;
        assert!(!page.contains("evil.example"));
        assert!(page.contains(&csrf));

        // Log out from the navigation.
        let (status, _, _) = post(&admin, &site.url("/logout"), &[("_csrf", &csrf)]).await;
        assert_eq!(status, 303);
        let response = admin
            .get(site.url("/wp-admin/connected-apps"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        site.cleanup().await;
    }
}
