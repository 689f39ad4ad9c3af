//! The SDK against our real broker and site over TLS (test CA) on loopback: discovery, the brokered
//! connection, the three-legged flow through the loopback listener or a pasted verifier, typed REST calls,
//! revocation, and the errors a user sees.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use authbroker_broker::apps::{App, NewApp, create_developer, register_app};
use authbroker_broker::{BrokerConfig, BrokerState, router};
use authbroker_client::{Approval, Client, Credentials, Error, NewPost, Revocation, Session};
use authbroker_site::{
    KnownBrokerConfig, NewConsumer, Role, SiteConfig, SiteState, SystemClock, create_user,
    register_consumer,
};
use authbroker_testkit::{BoundTls, ScriptedUser, TestCa, form_value, serve_http};

const CALLBACK: &str = "http://127.0.0.1/callback";

struct World {
    ca: TestCa,
    broker_url: String,
    broker: BrokerState,
    site_url: String,
    site: SiteState,
    _dirs: Vec<tempfile::TempDir>,
}

/// Our broker and a site that trusts it (`trusting`), both over TLS.
async fn world(trusting: bool) -> World {
    let ca = TestCa::new("client test CA");
    let broker_dir = tempfile::tempdir().unwrap();
    let bound = BoundTls::bind(&ca, "broker").await;
    let broker_url = bound.base();
    let mut config = BrokerConfig::new(format!("{broker_url}/"));
    config.data_dir = broker_dir.path().to_owned();
    config.allow_loopback_targets = true;
    config.extra_root_certs = vec![ca.pem_path()];
    config.connect_timeout_secs = 10;
    let broker = BrokerState::open(config, Arc::new(SystemClock))
        .await
        .unwrap();
    bound.serve(router(broker.clone()));

    let site_dir = tempfile::tempdir().unwrap();
    let bound = BoundTls::bind(&ca, "site").await;
    let site_url = bound.base();
    let mut config = SiteConfig::new(site_url.clone());
    config.name = "Client Test Site".to_owned();
    config.data_dir = site_dir.path().to_owned();
    if trusting {
        config.known_brokers = vec![KnownBrokerConfig {
            id: format!("{broker_url}/"),
            verification_url: format!("{broker_url}/broker/confirm/"),
        }];
    }
    config.extra_root_certs = vec![ca.pem_path()];
    let site = SiteState::open(config, Arc::new(SystemClock))
        .await
        .unwrap();
    create_user(
        &site,
        "editor",
        "Eddie Editor",
        "e@site.example",
        "correct horse battery",
        Role::Author,
    )
    .await
    .unwrap();
    bound.serve(authbroker_site::router(site.clone()));
    World {
        ca,
        broker_url,
        broker,
        site_url,
        site,
        _dirs: vec![broker_dir, site_dir],
    }
}

impl World {
    fn client(&self) -> Client {
        Client::builder()
            .add_root_pem(&std::fs::read(self.ca.pem_path()).unwrap())
            .unwrap()
            .build()
            .unwrap()
    }

    fn user(&self) -> ScriptedUser {
        let mut user = ScriptedUser::new("editor", "correct horse battery");
        user.client = self.ca.client();
        user
    }

    async fn app(&self) -> App {
        let developer = create_developer(
            &self.broker,
            "dev@app.example",
            "Dev",
            "developer password",
            "developer",
        )
        .await
        .unwrap();
        register_app(
            &self.broker,
            &developer.id,
            NewApp {
                name: "Pressly",
                description: "Publishes Markdown to your site",
                callback_url: CALLBACK,
                details_url: "https://app.example/about",
            },
        )
        .await
        .unwrap()
    }
}

/// What the person does with the authorize URL: log in, approve, and (`follow`) let the browser go to the
/// callback. Returns the callback URL.
async fn approve_in_browser(
    user: ScriptedUser,
    site: String,
    authorize_url: String,
    follow: bool,
) -> String {
    let query = authorize_url.split_once('?').unwrap().1;
    let token = form_value(query, "oauth_token");
    user.log_in(&site).await;
    let location = user.approve(&site, &token).await;
    if follow {
        let page = reqwest::get(&location).await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("You can close this tab")
        );
    }
    location
}

/// The brokered connection and the approval through the loopback listener.
async fn connect(world: &World) -> Session {
    let client = world.client();
    let app = world.app().await;
    // What a person types: no scheme (https is assumed), no trailing slash.
    let typed = world.site_url.trim_start_matches("https://");
    let site = client.discover(typed).await.unwrap();
    assert_eq!(site.home, world.site_url);
    assert_eq!(site.name, "Client Test Site");
    let mut stages = Vec::new();
    let brokered = client
        .connect_via_broker(
            &world.broker_url,
            &Credentials::new(&app.client_id, &app.client_secret),
            &site,
            |p| stages.push(p),
        )
        .await
        .unwrap();
    assert_eq!(brokered.broker, format!("{}/", world.broker_url));
    assert_eq!(brokered.credentials.key.len(), 12);
    assert_eq!(
        stages,
        [
            authbroker_client::BrokerProgress::Sent,
            authbroker_client::BrokerProgress::Accepted,
            authbroker_client::BrokerProgress::Processing
        ]
    );
    let user = world.user();
    let site_url = world.site_url.clone();
    let mut shown = None;
    let session = client
        .authorize(
            &brokered.site,
            &brokered.credentials,
            Approval::loopback("/callback"),
            |url| {
                assert!(
                    url.starts_with(&format!("{site_url}/oauth1/authorize?oauth_token=")),
                    "{url}"
                );
                shown = Some(tokio::spawn(approve_in_browser(
                    user,
                    site_url.clone(),
                    url.to_owned(),
                    true,
                )));
            },
        )
        .await
        .unwrap();
    let location = shown.unwrap().await.unwrap();
    assert!(location.starts_with("http://127.0.0.1:"), "{location}");
    session
}

#[tokio::test]
async fn brokered_connection_then_posts_then_revocation() {
    let world = world(true).await;
    let session = connect(&world).await;
    let me = session.me().await.unwrap();
    assert_eq!(me.name, "Eddie Editor");
    assert_eq!(me.slug, "editor");

    let created = session
        .create_post(&NewPost {
            title: "From the SDK".to_owned(),
            content: "<p>Hello</p>".to_owned(),
            status: "publish".to_owned(),
            slug: Some("from-the-sdk".to_owned()),
        })
        .await
        .unwrap();
    assert_eq!(created.status, "publish");
    assert_eq!(created.slug, "from-the-sdk");
    let read = session.post(&created.id).await.unwrap();
    assert_eq!(read.title.rendered, "From the SDK");
    let list = session.posts(1, 10, "any").await.unwrap();
    assert_eq!(list.total, Some(1));
    assert_eq!(list.posts[0].id, created.id);

    assert_eq!(session.revoke().await.unwrap(), Revocation::Revoked);
    let err = session.me().await.unwrap_err();
    assert!(err.needs_reconnect(), "{err}");
    assert!(err.to_string().contains("run `authbroker connect"), "{err}");
    // Revoking again: the site no longer knows the token.
    assert_eq!(session.revoke().await.unwrap(), Revocation::AlreadyInvalid);
}

#[tokio::test]
async fn direct_credentials_with_a_pasted_verifier() {
    let world = world(false).await;
    let consumer = register_consumer(
        &world.site,
        NewConsumer {
            name: "Terminal app",
            description: "Registered by hand",
            callback: "oob",
        },
    )
    .await
    .unwrap();
    let client = world.client();
    let site = client.discover(&world.site_url).await.unwrap();
    let (paste, pasted) = tokio::sync::oneshot::channel::<String>();
    let user = world.user();
    let site_url = world.site_url.clone();
    let session = client
        .authorize(
            &site,
            &Credentials::new(&consumer.key, &consumer.secret),
            Approval::out_of_band(async move { pasted.await.ok() }),
            move |url| {
                let url = url.to_owned();
                tokio::spawn(async move {
                    // With oob the site shows the verifier on a page; the person copies it.
                    let query = url.split_once('?').unwrap().1;
                    let token = form_value(query, "oauth_token");
                    user.log_in(&site_url).await;
                    let page = approve_oob(&user, &site_url, &token).await;
                    paste.send(format!("  {page}\n")).unwrap();
                });
            },
        )
        .await
        .unwrap();
    assert_eq!(session.me().await.unwrap().name, "Eddie Editor");
}

/// Approves a token whose callback is `oob`; returns the verifier shown on the page.
async fn approve_oob(user: &ScriptedUser, site: &str, token: &str) -> String {
    let consent = user
        .client
        .get(format!("{site}/oauth1/authorize?oauth_token={token}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = authbroker_testkit::hidden_field(&consent, "_csrf");
    let response = user
        .client
        .post(format!("{site}/oauth1/authorize"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("oauth_token", token),
            ("wp-submit", "authorize"),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status();
    let page = response.text().await.unwrap();
    assert_eq!(status, 200, "{page}");
    // The page shows the verifier in <code id="code">.
    let start =
        page.find("<code id=\"code\">").expect("verifier shown") + "<code id=\"code\">".len();
    let end = page[start..].find("</code>").unwrap() + start;
    page[start..end].to_owned()
}

#[tokio::test]
async fn a_denial_and_a_distrusting_site_say_what_happened() {
    let world = world(false).await;
    let client = world.client();
    let app = world.app().await;
    let site = client.discover(&world.site_url).await.unwrap();
    let err = client
        .connect_via_broker(
            &world.broker_url,
            &Credentials::new(&app.client_id, &app.client_secret),
            &site,
            |_| {},
        )
        .await
        .unwrap_err();
    let Error::Broker {
        code, site_error, ..
    } = &err
    else {
        panic!("a broker error: {err}")
    };
    assert_eq!(code, "broker.connect.failure");
    assert_eq!(site_error.as_deref(), Some("ba.unknown_broker"));
    assert!(
        err.to_string().contains("does not trust this broker"),
        "{err}"
    );

    // A wrong app secret: the broker's own refusal.
    let err = client
        .connect_via_broker(
            &world.broker_url,
            &Credentials::new(&app.client_id, "wrong"),
            &site,
            |_| {},
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Broker { code, .. } if code == "json_oauth1_signature_mismatch"),
        "{err}"
    );

    // The person presses Cancel.
    let consumer = register_consumer(
        &world.site,
        NewConsumer {
            name: "Denied app",
            description: "",
            callback: CALLBACK,
        },
    )
    .await
    .unwrap();
    let user = world.user();
    let site_url = world.site_url.clone();
    let err = client
        .authorize(
            &site,
            &Credentials::new(&consumer.key, &consumer.secret),
            Approval::loopback("/callback"),
            move |url| {
                let url = url.to_owned();
                tokio::spawn(async move {
                    let token = form_value(url.split_once('?').unwrap().1, "oauth_token");
                    user.log_in(&site_url).await;
                    let consent = user
                        .client
                        .get(&url)
                        .send()
                        .await
                        .unwrap()
                        .text()
                        .await
                        .unwrap();
                    let csrf = authbroker_testkit::hidden_field(&consent, "_csrf");
                    let denied = user
                        .client
                        .post(format!("{site_url}/oauth1/authorize"))
                        .form(&[
                            ("_csrf", csrf.as_str()),
                            ("oauth_token", token.as_str()),
                            ("wp-submit", "cancel"),
                        ])
                        .send()
                        .await
                        .unwrap();
                    let location = denied.headers()["location"].to_str().unwrap().to_owned();
                    assert!(location.contains("denied="), "{location}");
                    reqwest::get(&location).await.unwrap();
                });
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Denied { .. }), "{err}");
}

#[tokio::test]
async fn discovery_follows_links_fallbacks_and_refuses_what_is_no_site() {
    use axum::routing::get;
    // A site without pretty permalinks: no Link header, no /wp-json/, only ?rest_route=/.
    let plain = serve_http(axum::Router::new().route(
        "/",
        get(|axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>| async move {
            if q.iter().any(|(n, v)| n == "rest_route" && v == "/") {
                axum::Json(serde_json::json!({"name": "Plain", "home": "http://127.0.0.1:1", "namespaces": ["wp/v2"], "authentication": []})).into_response_()
            } else {
                "<html>home</html>".into_response_()
            }
        }),
    ))
    .await;
    let client = Client::new().unwrap();
    let site = client.discover(&plain).await.unwrap();
    assert_eq!(site.api_root, format!("{plain}/?rest_route=/"));
    assert_eq!(site.name, "Plain");
    assert!(site.oauth1.is_none() && site.broker_endpoint.is_none());

    // A redirect to the real home, which links its API root elsewhere.
    let linked = serve_http(
        axum::Router::new()
            .route(
                "/",
                get(|| async { ([("link", "</api/>; rel=\"https://api.w.org/\"")], "home") }),
            )
            .route(
                "/api/",
                get(|| async { axum::Json(serde_json::json!({"name": "Linked", "routes": {}})) }),
            ),
    )
    .await;
    let redirecting = serve_http(axum::Router::new().fallback({
        let linked = linked.clone();
        move || {
            let linked = linked.clone();
            async move { axum::response::Redirect::permanent(&format!("{linked}/")) }
        }
    }))
    .await;
    let site = client
        .discover(&format!("{redirecting}/old/"))
        .await
        .unwrap();
    assert_eq!(site.api_root, format!("{linked}/api/"));
    assert_eq!(site.home, linked);

    let nothing = serve_http(axum::Router::new().route("/", get(|| async { "just a page" }))).await;
    let err = client.discover(&nothing).await.unwrap_err();
    assert!(matches!(err, Error::NotAWordPressSite { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("does not look like a WordPress site")
    );

    let err = client.discover("http://127.0.0.1:9/").await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
}

/// `IntoResponse` for either branch of a handler without boxing at the call site.
trait IntoResponseExt {
    fn into_response_(self) -> axum::response::Response;
}

impl<T: axum::response::IntoResponse> IntoResponseExt for T {
    fn into_response_(self) -> axum::response::Response {
        self.into_response()
    }
}
