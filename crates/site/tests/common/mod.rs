//! Test support: a real site on an ephemeral loopback port, on SQLite or PostgreSQL, and a scripted user.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::sync::Arc;

use authbroker_oauth1::{SignatureMethod, Signer, parse_form};
use authbroker_site::{
    Clock, Consumer, NewConsumer, Role, SiteConfig, SiteState, SystemClock, create_user,
    register_consumer, router,
};
#[allow(unused_imports)]
pub use authbroker_testkit::{browser, hidden_field, nonce, now};

/// Which database a test site runs on. Every storage-touching test runs on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// A running site.
pub struct TestSite {
    pub state: SiteState,
    pub base: String,
    pub admin_login: String,
    pub admin_password: String,
    _dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl TestSite {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, Arc::new(SystemClock), |_| {}).await
    }

    /// Starts a site; `configure` may adjust the configuration (known brokers, …) before it opens.
    pub async fn start_with(
        backend: Backend,
        clock: Arc<dyn Clock>,
        configure: impl FnOnce(&mut SiteConfig),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut config = SiteConfig::new(base.clone());
        config.name = "Test Site".into();
        config.data_dir = dir.path().to_path_buf();
        let mut pg = None;
        if backend == Backend::Postgres {
            let server = authbroker_store::testing::postgres_url().expect(
                "AUTHBROKER_TEST_DATABASE_URL must name the test PostgreSQL (scripts/test sets it)",
            );
            let url = authbroker_store::testing::create_postgres_database(&server)
                .await
                .unwrap();
            config.database_url = Some(url.clone());
            pg = Some((server, url));
        }
        configure(&mut config);
        let state = SiteState::open(config, clock).await.unwrap();
        create_user(
            &state,
            "admin",
            "Ada Admin",
            "admin@site.example",
            "correct horse battery",
            Role::Administrator,
        )
        .await
        .unwrap();
        let app = router(state.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            state,
            base,
            admin_login: "admin".into(),
            admin_password: "correct horse battery".into(),
            _dir: dir,
            pg,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn consumer(&self, callback: &str) -> Consumer {
        register_consumer(
            &self.state,
            NewConsumer {
                name: "Test App",
                description: "An app used by the tests",
                callback,
            },
        )
        .await
        .unwrap()
    }

    /// Drops the PostgreSQL database of this site (best effort).
    pub async fn cleanup(self) {
        if let Some((server, url)) = &self.pg {
            self.state.store().pool().close().await;
            let _ = authbroker_store::testing::drop_postgres_database(server, url).await;
        }
    }
}

/// A scripted user: logs in through the login form.
pub async fn log_in(site: &TestSite, browser: &reqwest::Client, login: &str, password: &str) {
    let page = browser
        .get(site.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_field(&page, "_csrf");
    let response = browser
        .post(site.url("/login"))
        .form(&[
            ("log", login),
            ("pwd", password),
            ("_csrf", &csrf),
            ("redirect_to", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "login should redirect");
}

/// Signs and sends an OAuth request with form-encoded body params; returns status and body.
pub async fn signed_post(
    url: &str,
    signer: Signer<'_>,
    form: &[(String, String)],
) -> (u16, String) {
    let header = signer.sign("POST", url, form, &nonce(), now()).unwrap();
    let response = reqwest::Client::new()
        .post(url)
        .header("Authorization", header.to_header_value())
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Credentials from a form-encoded OAuth reply.
pub fn form_value(body: &str, name: &str) -> String {
    parse_form(body)
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .1
}

/// The whole three-legged flow with a scripted user approving; returns the access token and secret.
pub async fn three_legged(
    site: &TestSite,
    consumer: &Consumer,
    method: SignatureMethod,
) -> (String, String) {
    let callback = "http://127.0.0.1:9/callback";
    let (status, body) = signed_post(
        &site.url("/oauth1/request"),
        Signer::new(method, &consumer.key, &consumer.secret).callback(callback),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(form_value(&body, "oauth_callback_confirmed"), "true");
    let request_key = form_value(&body, "oauth_token");
    let request_secret = form_value(&body, "oauth_token_secret");

    let browser = browser();
    log_in(site, &browser, &site.admin_login, &site.admin_password).await;
    let consent = browser
        .get(site.url(&format!("/oauth1/authorize?oauth_token={request_key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), 200);
    let page = consent.text().await.unwrap();
    let csrf = hidden_field(&page, "_csrf");
    let approved = browser
        .post(site.url("/oauth1/authorize"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("oauth_token", &request_key),
            ("wp-submit", "authorize"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 303);
    let location = approved.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(callback), "{location}");
    let query = location.split_once('?').unwrap().1;
    let verifier = form_value(query, "oauth_verifier");
    assert_eq!(form_value(query, "oauth_token"), request_key);
    assert_eq!(form_value(query, "wp_scope"), "*");

    let (status, body) = signed_post(
        &site.url("/oauth1/access"),
        Signer::new(method, &consumer.key, &consumer.secret)
            .token(&request_key, &request_secret)
            .verifier(&verifier),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (
        form_value(&body, "oauth_token"),
        form_value(&body, "oauth_token_secret"),
    )
}
