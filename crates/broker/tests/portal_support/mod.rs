//! Support for the portal and API tests: a broker on an ephemeral loopback port on SQLite or a fresh
//! PostgreSQL database, and a browser-like client.
#![allow(dead_code, clippy::unwrap_used, unreachable_pub)]

use std::sync::Arc;

use authbroker_broker::apps::App;
use authbroker_broker::{BrokerConfig, BrokerState, SystemClock, router};
#[allow(unused_imports)]
pub use authbroker_testkit::browser;
use authbroker_testkit::hidden_field;

/// Which database a test broker runs on. Every storage-touching test runs on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

pub const PASSWORD: &str = "correct horse battery";

/// A running broker over plain HTTP on loopback.
pub struct TestBroker {
    pub state: BrokerState,
    pub base: String,
    _dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl TestBroker {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts a broker; `configure` may adjust the configuration before it opens.
    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut BrokerConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut config = BrokerConfig::new(format!("{base}/"));
        config.name = "Test Broker".into();
        config.data_dir = dir.path().to_owned();
        config.allow_loopback_targets = true;
        config.connect_timeout_secs = 5;
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
        let state = BrokerState::open(config, Arc::new(SystemClock))
            .await
            .unwrap();
        let app = router(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            state,
            base,
            _dir: dir,
            pg,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Drops the PostgreSQL database of this broker (best effort).
    pub async fn cleanup(self) {
        if let Some((server, url)) = &self.pg {
            self.state.store().pool().close().await;
            let _ = authbroker_store::testing::drop_postgres_database(server, url).await;
        }
    }
}

/// The `Location` of a redirect.
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location in a {} response", response.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// GETs a page; returns the status and the HTML.
pub async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    let response = client.get(url).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The CSRF token of the form on the page at `url` (which also gives the browser its CSRF cookie).
pub async fn csrf(client: &reqwest::Client, url: &str) -> String {
    let (status, page) = get(client, url).await;
    assert_eq!(status, 200, "{url}: {page}");
    hidden_field(&page, "_csrf")
}

/// Submits a form (the CSRF field added) and returns the response.
pub async fn post_form(
    client: &reqwest::Client,
    url: &str,
    csrf: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = vec![("_csrf", csrf)];
    form.extend_from_slice(fields);
    client.post(url).form(&form).send().await.unwrap()
}

/// Signs up through the pages; the client is then signed in.
pub async fn sign_up(broker: &TestBroker, client: &reqwest::Client, email: &str, name: &str) {
    let token = csrf(client, &broker.url("/signup")).await;
    let response = post_form(
        client,
        &broker.url("/signup"),
        &token,
        &[("email", email), ("name", name), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(response.status(), 303, "sign up should redirect");
    assert_eq!(location(&response), "/apps?done=welcome");
}

/// Logs in through the login page.
pub async fn log_in(broker: &TestBroker, client: &reqwest::Client, email: &str, password: &str) {
    let token = csrf(client, &broker.url("/login")).await;
    let response = post_form(
        client,
        &broker.url("/login"),
        &token,
        &[
            ("email", email),
            ("password", password),
            ("redirect_to", "/apps"),
        ],
    )
    .await;
    assert_eq!(response.status(), 303, "login should redirect");
}

/// Registers an app through the pages; returns its client id (from the redirect to its page).
pub async fn register_app(
    broker: &TestBroker,
    client: &reqwest::Client,
    name: &str,
    callback: &str,
) -> String {
    let token = csrf(client, &broker.url("/apps")).await;
    let response = post_form(
        client,
        &broker.url("/apps"),
        &token,
        &[
            ("name", name),
            ("description", "Publishes Markdown to your site"),
            ("callback_url", callback),
            ("details_url", "https://app.example/about"),
        ],
    )
    .await;
    assert_eq!(response.status(), 303, "registration should redirect");
    let location = location(&response);
    let client_id = location
        .strip_prefix("/apps/")
        .and_then(|rest| rest.strip_suffix("?done=registered"))
        .unwrap_or_else(|| panic!("unexpected redirect {location}"));
    client_id.to_owned()
}

/// The text of the element with `id` in `html` (a `<code id=…>` or `<td id=…>`).
pub fn element_text(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in page:\n{html}"));
    let open_end = html[start..].find('>').unwrap() + start + 1;
    let close = html[open_end..].find('<').unwrap() + open_end;
    html[open_end..close].to_owned()
}

/// The app with this client id, straight from the registry (whatever its owner).
pub async fn app_by_client_id(state: &BrokerState, client_id: &str) -> Option<App> {
    use authbroker_store::sqlx::{self, Row};
    let row = sqlx::query("SELECT developer_id FROM apps WHERE client_id = $1")
        .bind(client_id)
        .fetch_optional(state.store().pool())
        .await
        .unwrap()?;
    let developer: String = row.try_get("developer_id").unwrap();
    authbroker_broker::apps::app_of(state, &developer, client_id)
        .await
        .unwrap()
}
