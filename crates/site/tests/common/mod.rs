//! Test support: a real site on an ephemeral loopback port, on SQLite or PostgreSQL. What is not about
//! starting a site (signed requests, the scripted user, the three-legged flow) is in `authbroker-testkit`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::sync::Arc;

use authbroker_oauth1::SignatureMethod;
use authbroker_site::{
    Clock, Consumer, NewConsumer, Role, SiteConfig, SiteState, SystemClock, create_user,
    register_consumer, router,
};
#[allow(unused_imports)]
pub use authbroker_testkit::{
    AccessToken, Reply, ScriptedUser, browser, form_value, hidden_field, nonce, now, send,
    sign_now, signed, signed_post,
};

/// The callback the sites' test apps register and the three-legged flow uses.
pub const TEST_CALLBACK: &str = "http://127.0.0.1:9/callback";

/// Which database a test site runs on. Every storage-touching test runs on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// The database of one test: SQLite in the site's data directory (no URL), or a fresh PostgreSQL database.
pub struct TestDatabase {
    pg: Option<(String, String)>,
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Self {
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let server = authbroker_store::testing::postgres_url().expect(
                    "AUTHBROKER_TEST_DATABASE_URL must name the test PostgreSQL (scripts/test sets it)",
                );
                let url = authbroker_store::testing::create_postgres_database(&server)
                    .await
                    .unwrap();
                Some((server, url))
            }
        };
        Self { pg }
    }

    /// The `database_url` for the site's configuration.
    pub fn url(&self) -> Option<String> {
        self.pg.as_ref().map(|(_, url)| url.clone())
    }

    /// Drops the PostgreSQL database (best effort); close the pools on it first.
    pub async fn drop(self) {
        if let Some((server, url)) = &self.pg {
            let _ = authbroker_store::testing::drop_postgres_database(server, url).await;
        }
    }
}

/// A running site.
pub struct TestSite {
    pub state: SiteState,
    pub base: String,
    pub admin_login: String,
    pub admin_password: String,
    _dir: tempfile::TempDir,
    database: TestDatabase,
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
        let database = TestDatabase::create(backend).await;
        config.database_url = database.url();
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
            database,
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

    /// A person at a browser who will log in as the site's administrator.
    pub fn admin(&self) -> ScriptedUser {
        ScriptedUser::new(&self.admin_login, &self.admin_password)
    }

    /// A browser logged in as `login`.
    pub async fn logged_in(&self, login: &str, password: &str) -> reqwest::Client {
        let user = ScriptedUser::new(login, password);
        user.log_in(&self.base).await;
        user.client
    }

    /// The whole three-legged flow for `consumer` with [`TEST_CALLBACK`], the administrator approving.
    pub async fn three_legged(&self, consumer: &Consumer, method: SignatureMethod) -> AccessToken {
        self.three_legged_as(consumer, method, &self.admin()).await
    }

    /// The whole three-legged flow for `consumer` with [`TEST_CALLBACK`], `user` approving.
    pub async fn three_legged_as(
        &self,
        consumer: &Consumer,
        method: SignatureMethod,
        user: &ScriptedUser,
    ) -> AccessToken {
        authbroker_testkit::three_legged_with(
            &self.base,
            &consumer.key,
            &consumer.secret,
            method,
            TEST_CALLBACK,
            user,
        )
        .await
    }

    /// Drops the PostgreSQL database of this site (best effort).
    pub async fn cleanup(self) {
        if self.database.pg.is_some() {
            self.state.store().pool().close().await;
        }
        self.database.drop().await;
    }
}
