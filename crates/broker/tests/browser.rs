//! The developer portal in a real headless Chromium (through chromedriver): sign up, register an app, see
//! its credentials, regenerate its secret. Screenshots go to `screenshots/` of the target directory
//! (`broker-signup.png`, `broker-app.png`, `broker-regenerated.png`).
//!
//! Needs `AUTHBROKER_CHROMEDRIVER` (and `AUTHBROKER_CHROMIUM`), which `scripts/test` installs and sets; the
//! test fails without them.
#![allow(clippy::unwrap_used)]

mod portal_support;

use authbroker_testkit::chromium::Chromium;
use portal_support::*;

#[tokio::test]
async fn sign_up_register_an_app_and_regenerate_its_secret() {
    for backend in BACKENDS {
        let broker = TestBroker::start(backend).await;
        let browser = Chromium::start().await;

        // Signed out, the portal leads to the login page, which links to sign up.
        browser.goto(&broker.url("/")).await;
        browser
            .wait_for_url("the login page", |u| u.path() == "/login")
            .await;
        browser.click("#to-signup").await;
        browser
            .wait_for_url("the sign-up page", |u| u.path() == "/signup")
            .await;
        browser.fill("#email", "ada@pressly.example").await;
        browser.fill("#name", "Pressly Ltd").await;
        browser.fill("#password", PASSWORD).await;
        browser.screenshot("broker-signup.png").await;
        browser.click("#sign-up").await;
        browser
            .wait_for_url("My apps", |u| u.path() == "/apps")
            .await;
        assert!(browser.text("#notice").await.starts_with("Welcome!"));
        assert_eq!(browser.text("#nav-user").await, "Pressly Ltd");

        browser.fill("#app-name", "Pressly").await;
        browser
            .fill("#app-description", "Publishes Markdown to your site")
            .await;
        browser.fill("#app-callback", "pressly://callback").await;
        browser
            .fill("#app-details", "https://pressly.example/")
            .await;
        browser.click("#register-app").await;
        let page = browser
            .wait_for_url("the app's page", |u| {
                u.path().starts_with("/apps/") && u.query() == Some("done=registered")
            })
            .await;
        let client_id = page.path().trim_start_matches("/apps/").to_owned();
        assert_eq!(browser.text("#client-key").await, client_id);
        assert_eq!(browser.text("#app-name").await, "Pressly");
        assert_eq!(browser.text("#app-callback").await, "pressly://callback");
        assert_eq!(browser.text("#app-status").await, "active");
        let secret = browser.text("#client-secret").await;
        assert_eq!(secret.len(), 48, "{secret}");
        assert!(browser.has("#no-connections").await);
        browser.screenshot("broker-app.png").await;

        browser.click("#regenerate-secret").await;
        browser
            .wait_for_url("the app's page after regenerating", |u| {
                u.query() == Some("done=secret")
            })
            .await;
        let regenerated = browser.text("#client-secret").await;
        assert_ne!(regenerated, secret);
        assert!(
            browser
                .text("#notice")
                .await
                .starts_with("A new client secret was generated.")
        );
        let stored = app_by_client_id(&broker.state, &client_id).await.unwrap();
        assert_eq!(stored.client_secret, regenerated);
        browser.screenshot("broker-regenerated.png").await;

        drop(browser);
        broker.cleanup().await;
    }
}
