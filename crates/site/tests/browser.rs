//! The site's server-rendered pages in a real headless Chromium (through chromedriver): login, the OAuth 1.0a
//! consent page with approve, cancel and switch user, and the management pages (connected applications and
//! revoking, registering an application). Screenshots go to `target/screenshots/` of the target directory.
//!
//! Needs `AUTHBROKER_CHROMEDRIVER` (and `AUTHBROKER_CHROMIUM`), which `scripts/test` installs and sets; the
//! tests fail without them.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use authbroker_oauth1::{SignatureMethod, Signer};
use authbroker_site::{Consumer, Role, create_user};
use axum::extract::RawQuery;
use axum::routing::get;
use tokio::sync::mpsc;

use authbroker_testkit::chromium::Chromium;
use common::{AccessToken, Backend, TestSite, form_value, send, signed, signed_post};

/// A tiny app on a loopback port standing in for the consumer's callback: it records every query string
/// `/callback` receives and answers "ok".
struct CallbackApp {
    url: String,
    queries: mpsc::UnboundedReceiver<String>,
}

impl CallbackApp {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/callback", listener.local_addr().unwrap());
        let (sender, queries) = mpsc::unbounded_channel();
        let app = axum::Router::new().route(
            "/callback",
            get(move |RawQuery(query): RawQuery| {
                let sender = sender.clone();
                async move {
                    let _ = sender.send(query.unwrap_or_default());
                    "ok"
                }
            }),
        );
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, queries }
    }

    /// The query of the next request to the callback.
    async fn next_query(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(20), self.queries.recv())
            .await
            .expect("the callback was not called")
            .unwrap()
    }
}

/// Temporary credentials for `consumer`, with `callback` (`oob` or a URL).
async fn request_token(site: &TestSite, consumer: &Consumer, callback: &str) -> (String, String) {
    authbroker_testkit::request_token(&site.base, signer(consumer).callback(callback)).await
}

fn signer(consumer: &Consumer) -> Signer<'_> {
    Signer::new(SignatureMethod::HmacSha1, &consumer.key, &consumer.secret)
}

/// Opens the authorize URL for `token` logged out, logs in on the page it leads to, and waits for consent.
async fn log_in_to_consent(browser: &Chromium, site: &TestSite, token: &str) {
    browser
        .goto(&site.url(&format!("/oauth1/authorize?oauth_token={token}")))
        .await;
    let login = browser
        .wait_for_url("the login page", |u| u.path() == "/login")
        .await;
    let back_to = login
        .query_pairs()
        .find(|(name, _)| name == "redirect_to")
        .map(|(_, value)| value.into_owned());
    assert_eq!(
        back_to.as_deref(),
        Some(format!("/oauth1/authorize?oauth_token={token}").as_str()),
        "the login page should lead back to the consent page: {login}"
    );
    browser
        .log_in(&site.admin_login, &site.admin_password)
        .await;
    browser
        .wait_for_url("the consent page", |u| u.path() == "/oauth1/authorize")
        .await;
    browser.find("#approve").await;
}

/// A site, an app whose callback is a [`CallbackApp`], a request token for it, and a browser logged in as the
/// administrator on the consent page for that token.
struct AtConsent {
    site: TestSite,
    app: CallbackApp,
    consumer: Consumer,
    request: (String, String),
    browser: Chromium,
}

impl AtConsent {
    async fn start() -> Self {
        let site = TestSite::start(Backend::Sqlite).await;
        let app = CallbackApp::start().await;
        let consumer = site.consumer(&app.url).await;
        let request = request_token(&site, &consumer, &app.url).await;
        let browser = Chromium::start().await;
        log_in_to_consent(&browser, &site, &request.0).await;
        Self {
            site,
            app,
            consumer,
            request,
            browser,
        }
    }
}

/// Exchanges an approved request token for access credentials.
async fn access_token(
    site: &TestSite,
    consumer: &Consumer,
    request: &(String, String),
    verifier: &str,
) -> AccessToken {
    authbroker_testkit::access_token(
        &site.base,
        signer(consumer)
            .token(&request.0, &request.1)
            .verifier(verifier),
    )
    .await
}

/// A signed `GET /wp-json/wp/v2/users/me` with access credentials: the status and the JSON reply.
async fn users_me(
    site: &TestSite,
    consumer: &Consumer,
    access: &AccessToken,
) -> (u16, serde_json::Value) {
    let signer = signer(consumer).token(&access.token, &access.secret);
    let reply = send(signed("GET", &site.url("/wp-json/wp/v2/users/me"), &signer)).await;
    (reply.status, reply.json())
}

#[tokio::test]
async fn login_page_refuses_a_wrong_password_and_logs_in() {
    let site = TestSite::start(Backend::Sqlite).await;
    let browser = Chromium::start().await;

    browser.goto(&site.url("/login")).await;
    assert_eq!(browser.client.title().await.unwrap(), "Log in · Test Site");
    assert_eq!(browser.text("h1").await, "Log in");
    assert_eq!(
        browser.find("#pwd").await.attr("type").await.unwrap(),
        Some("password".into())
    );
    assert!(!browser.has("[role=alert]").await);
    browser.screenshot("site-login.png").await;

    browser.log_in(&site.admin_login, "not the password").await;
    assert_eq!(
        browser.text("p.notice[role=alert]").await,
        "Unknown username or incorrect password."
    );
    assert_eq!(browser.current_url().await.path(), "/login");
    assert_eq!(
        browser.find("#log").await.prop("value").await.unwrap(),
        Some(site.admin_login.clone()),
        "the login name should be kept"
    );
    assert_eq!(
        browser.find("#pwd").await.prop("value").await.unwrap(),
        Some(String::new()),
        "the password should not be sent back"
    );
    browser.screenshot("site-login-error.png").await;

    browser
        .log_in(&site.admin_login, &site.admin_password)
        .await;
    browser
        .wait_for_url("the home page", |u| u.path() == "/")
        .await;
    assert!(!browser.has("#wp-submit").await);

    // The session cookie now authenticates the browser's REST reads as the admin.
    browser.goto(&site.url("/wp-json/wp/v2/users/me")).await;
    let me: serde_json::Value = serde_json::from_str(&browser.body_text().await).unwrap();
    assert_eq!(me["username"], "admin");
    assert_eq!(me["name"], "Ada Admin");
}

#[tokio::test]
async fn consent_in_the_browser_sends_the_verifier_to_the_callback() {
    let AtConsent {
        site,
        mut app,
        consumer,
        request: (request_key, request_secret),
        browser,
    } = AtConsent::start().await;
    assert_eq!(
        browser.client.title().await.unwrap(),
        "Authorize Test App · Test Site"
    );
    assert_eq!(browser.text("#app-name").await, "Test App");
    assert_eq!(
        browser.text("#app-description").await,
        "An app used by the tests"
    );
    assert_eq!(
        browser.text("#app-broker").await,
        "registered directly on this site"
    );
    let host = app.url.trim_end_matches("/callback");
    assert_eq!(browser.text("#callback-host").await, host);
    assert!(
        browser.body_text().await.contains("Howdy Ada Admin"),
        "{}",
        browser.body_text().await
    );
    assert_eq!(browser.text("#approve").await, "Authorize");
    assert_eq!(browser.text("#deny").await, "Cancel");
    browser.screenshot("site-consent.png").await;

    browser.click("#approve").await;
    let query = app.next_query().await;
    assert_eq!(form_value(&query, "oauth_token"), request_key);
    assert_eq!(form_value(&query, "wp_scope"), "*");
    let verifier = form_value(&query, "oauth_verifier");
    assert!(!verifier.is_empty(), "{query}");
    let landed = browser
        .wait_for_url("the callback", |u| u.path() == "/callback")
        .await;
    assert!(landed.as_str().starts_with(&app.url), "{landed}");
    assert_eq!(browser.body_text().await, "ok");

    // The app exchanges the verifier, and the access token acts as the user who approved.
    let access = access_token(&site, &consumer, &(request_key, request_secret), &verifier).await;
    let (status, me) = users_me(&site, &consumer, &access).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["username"], "admin", "{me}");
}

#[tokio::test]
async fn cancel_in_the_browser_sends_denied_to_the_callback() {
    let AtConsent {
        site,
        mut app,
        consumer,
        request: (request_key, request_secret),
        browser,
    } = AtConsent::start().await;
    browser.click("#deny").await;
    let query = app.next_query().await;
    assert_eq!(query, format!("denied={request_key}"));
    browser
        .wait_for_url("the callback", |u| u.path() == "/callback")
        .await;

    // The request token is gone: it can be neither approved nor exchanged.
    browser
        .goto(&site.url(&format!("/oauth1/authorize?oauth_token={request_key}")))
        .await;
    assert_eq!(browser.text("h1").await, "Something went wrong");
    assert!(!browser.has("#approve").await);
    let (status, body) = signed_post(
        &site.url("/oauth1/access"),
        signer(&consumer)
            .token(&request_key, &request_secret)
            .verifier("anything"),
        &[],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Invalid token"), "{body}");
}

#[tokio::test]
async fn cancel_without_a_callback_shows_access_denied() {
    let site = TestSite::start(Backend::Sqlite).await;
    let consumer = site.consumer("oob").await;
    let (request_key, _) = request_token(&site, &consumer, "oob").await;
    let browser = Chromium::start().await;

    log_in_to_consent(&browser, &site, &request_key).await;
    assert!(
        browser
            .text("#callback-host")
            .await
            .starts_with("no website"),
        "{}",
        browser.text("#callback-host").await
    );
    browser.click("#deny").await;
    assert_eq!(browser.text("h1").await, "Access denied");
    assert!(
        browser
            .body_text()
            .await
            .contains("You did not connect Test App."),
        "{}",
        browser.body_text().await
    );
    assert!(!browser.has("#code").await);
    browser.screenshot("site-denied.png").await;
}

#[tokio::test]
async fn switch_user_leads_to_the_login_page_and_back_as_the_other_user() {
    let AtConsent {
        site,
        mut app,
        request: (request_key, _),
        browser,
        ..
    } = AtConsent::start().await;
    create_user(
        &site.state,
        "bob",
        "Bob Builder",
        "bob@site.example",
        "bob's long password",
        Role::Author,
    )
    .await
    .unwrap();
    assert_eq!(browser.text("#switch-user").await, "Log in as another user");
    browser.click("#switch-user").await;
    let login = browser
        .wait_for_url("the login page", |u| u.path() == "/login")
        .await;
    assert!(
        login.query_pairs().any(|(name, _)| name == "switch"),
        "{login}"
    );
    assert_eq!(browser.text("h1").await, "Log in");
    assert!(
        browser
            .body_text()
            .await
            .contains("Log in as another user to continue."),
        "{}",
        browser.body_text().await
    );
    browser.screenshot("site-switch-user.png").await;

    browser.log_in("bob", "bob's long password").await;
    browser
        .wait_for_url("the consent page", |u| u.path() == "/oauth1/authorize")
        .await;
    assert!(
        browser.body_text().await.contains("Howdy Bob Builder"),
        "{}",
        browser.body_text().await
    );
    browser.click("#approve").await;
    let query = app.next_query().await;
    assert_eq!(form_value(&query, "oauth_token"), request_key);
}

#[tokio::test]
async fn connected_apps_page_revokes_an_app() {
    let AtConsent {
        site,
        mut app,
        consumer,
        request,
        browser,
    } = AtConsent::start().await;
    browser.click("#approve").await;
    let query = app.next_query().await;
    let access = access_token(
        &site,
        &consumer,
        &request,
        &form_value(&query, "oauth_verifier"),
    )
    .await;
    assert_eq!(users_me(&site, &consumer, &access).await.0, 200);

    browser.goto(&site.url("/wp-admin/connected-apps")).await;
    assert_eq!(browser.text("h1").await, "Connected applications");
    assert_eq!(browser.text("#nav-user").await, "Ada Admin");
    let row = format!("#app-{}", consumer.id);
    assert_eq!(browser.text(&format!("{row} .app-name")).await, "Test App");
    assert_eq!(
        browser.text(&format!("{row} .app-broker")).await,
        "registered directly"
    );
    assert_eq!(browser.text(&format!("{row} .revoke")).await, "Revoke");
    browser.screenshot("site-connected-apps.png").await;

    browser.click(&format!("{row} .revoke")).await;
    browser
        .wait_for_url("the connected apps page after revoking", |u| {
            u.path() == "/wp-admin/connected-apps" && u.query() == Some("done=revoked")
        })
        .await;
    assert!(
        browser.text("#notice").await.contains("disconnected"),
        "{}",
        browser.text("#notice").await
    );
    assert!(!browser.has(&row).await, "the revoked app is still listed");
    assert!(
        browser
            .text("#no-apps")
            .await
            .starts_with("You have not connected")
    );
    browser.screenshot("site-connected-apps-revoked.png").await;

    // Revoking really disconnected the app.
    assert_eq!(users_me(&site, &consumer, &access).await.0, 401);
}

#[tokio::test]
async fn admin_registers_an_application_and_sees_its_key() {
    let site = TestSite::start(Backend::Sqlite).await;
    let browser = Chromium::start().await;

    // Signed out, the page sends the admin to log in and back.
    browser.goto(&site.url("/wp-admin/applications")).await;
    browser
        .wait_for_url("the login page", |u| u.path() == "/login")
        .await;
    browser
        .log_in(&site.admin_login, &site.admin_password)
        .await;
    browser
        .wait_for_url("the applications page", |u| {
            u.path() == "/wp-admin/applications"
        })
        .await;
    assert_eq!(browser.text("h1").await, "Applications");
    assert!(browser.has("#no-applications").await);

    browser.fill("#name", "Browser App").await;
    browser
        .fill("#description", "Registered through the page")
        .await;
    browser
        .fill("#callback", "https://app.example/callback")
        .await;
    browser.click("#register-submit").await;
    let detail = browser
        .wait_for_url("the new application's page", |u| {
            u.path().starts_with("/wp-admin/applications/") && u.query() == Some("done=registered")
        })
        .await;
    assert!(
        browser
            .text("#notice")
            .await
            .starts_with("The application is registered"),
        "{}",
        browser.text("#notice").await
    );
    assert_eq!(browser.text("#app-name").await, "Browser App");
    assert_eq!(browser.text("#app-status").await, "active");
    assert_eq!(
        browser.text("#app-callback").await,
        "https://app.example/callback"
    );
    assert_eq!(
        browser.text("#app-broker").await,
        "registered directly on this site"
    );
    let key = browser.text("#consumer-key").await;
    let secret = browser.text("#consumer-secret").await;
    assert!(
        !key.is_empty() && !secret.is_empty(),
        "key {key:?}, secret {secret:?}"
    );
    browser.screenshot("site-application-registered.png").await;

    // The key and secret shown are the app's working credentials.
    let (status, body) = signed_post(
        &site.url("/oauth1/request"),
        Signer::new(SignatureMethod::HmacSha1, &key, &secret)
            .callback("https://app.example/callback"),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(form_value(&body, "oauth_callback_confirmed"), "true");

    // And the list shows it, linking to that page.
    browser.click("#nav-applications").await;
    browser
        .wait_for_url("the applications page", |u| {
            u.path() == "/wp-admin/applications"
        })
        .await;
    assert_eq!(browser.text("#applications .app-name").await, "Browser App");
    assert_eq!(
        browser.text("#applications .app-broker").await,
        "registered directly"
    );
    assert_eq!(browser.text("#applications .app-status").await, "active");
    let link = browser
        .find("#applications .app-name")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link, detail.path());
    browser.screenshot("site-applications.png").await;
}
