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
    // The listener served its page and stopped: nothing listens there any more.
    assert!(
        reqwest::get(&location).await.is_err(),
        "the loopback listener is gone"
    );
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

    // The same API addressed the way sites without pretty permalinks are: both `?rest_route=` forms.
    for root in ["index.php?rest_route=/", "?rest_route=/"] {
        let plain = world.client().session(
            authbroker_client::Site::from_parts(
                &world.site_url,
                &format!("{}/{root}", world.site_url),
                "Client Test Site",
            ),
            session.consumer().clone(),
            session.token().clone(),
        );
        assert_eq!(plain.me().await.unwrap().slug, "editor", "{root}");
        let post = plain
            .create_post(&NewPost {
                title: format!("Via {root}"),
                content: String::new(),
                status: "draft".to_owned(),
                slug: None,
            })
            .await
            .unwrap();
        assert_eq!(
            plain.post(&post.id).await.unwrap().title.rendered,
            format!("Via {root}")
        );
        let list = plain.posts(1, 5, "draft").await.unwrap();
        assert!(list.posts.iter().any(|p| p.id == post.id), "{root}");
    }

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

    // Standard input closed and no listener: nothing can bring a verifier, so it says so at once.
    let started = std::time::Instant::now();
    let err = client
        .authorize(
            &site,
            &Credentials::new(&consumer.key, &consumer.secret),
            Approval::out_of_band(async { None }),
            |_| {},
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("standard input closed"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
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

#[tokio::test]
async fn plain_http_endpoints_of_a_remote_site_are_refused() {
    use axum::routing::get;
    let ca = TestCa::new("client test CA");
    // An https site whose discovery Link points at plain HTTP elsewhere: never fetched.
    let linked = authbroker_testkit::serve_tls(
        axum::Router::new().route(
            "/",
            get(|| async {
                (
                    [(
                        "link",
                        "<http://192.0.2.1:9/wp-json/>; rel=\"https://api.w.org/\"",
                    )],
                    "home",
                )
            }),
        ),
        &ca,
    )
    .await;
    // An https site whose index sends the token requests to plain HTTP.
    let index = serde_json::json!({
        "name": "Leaky", "namespaces": ["oauth1"],
        "authentication": {"oauth1": {
            "request": "http://192.0.2.1:9/oauth1/request",
            "authorize": "https://192.0.2.1:9/oauth1/authorize",
            "access": "http://192.0.2.1:9/oauth1/access",
            "version": "0.1"
        }}
    });
    let leaky = authbroker_testkit::serve_tls(
        axum::Router::new().route(
            "/wp-json/",
            get(move || {
                let index = index.clone();
                async move { axum::Json(index) }
            }),
        ),
        &ca,
    )
    .await;
    let client = Client::builder()
        .add_root_pem(&std::fs::read(ca.pem_path()).unwrap())
        .unwrap()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    let err = client.discover(&linked).await.unwrap_err();
    let Error::NotAWordPressSite { detail, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        detail.as_deref().unwrap_or_default().contains("plain http"),
        "{err}"
    );
    let err = client.discover(&leaky).await.unwrap_err();
    assert!(
        matches!(&err, Error::InsecureUrl { url } if url.starts_with("http://192.0.2.1")),
        "{err}"
    );
}

/// A broker that answers with `parts` and then keeps the connection open (`hang`) or closes it.
async fn fake_broker(
    status: u16,
    content_type: &'static str,
    parts: &'static [&'static str],
    hang: bool,
) -> String {
    use futures_util::StreamExt;
    serve_http(axum::Router::new().route(
        "/broker/connect",
        axum::routing::post(move || async move {
            let lines =
                futures_util::stream::iter(parts.iter().map(|p| {
                    Ok::<_, std::io::Error>(axum::body::Bytes::from_static(p.as_bytes()))
                }));
            let body = if hang {
                axum::body::Body::from_stream(lines.chain(futures_util::stream::pending()))
            } else {
                axum::body::Body::from_stream(lines)
            };
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [("content-type", content_type)],
                body,
            )
        }),
    ))
    .await
}

/// What the client makes of a broker that answers `parts` (see [`fake_broker`]).
async fn broker_says(
    status: u16,
    content_type: &'static str,
    parts: &'static [&'static str],
    hang: bool,
) -> Result<authbroker_client::Brokered, Error> {
    let client = Client::builder()
        .broker_timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    let site = authbroker_client::Site::from_parts(
        "http://127.0.0.1:1",
        "http://127.0.0.1:1/wp-json/",
        "S",
    );
    let broker = fake_broker(status, content_type, parts, hang).await;
    client
        .connect_via_broker(&broker, &Credentials::new("key", "secret"), &site, |_| {})
        .await
}

const PROCESSING: &str = "{\"status\":\"processing\"}\n";

#[tokio::test]
async fn broker_answers_of_every_shape() {
    // NDJSON labelled as JSON, stream kept open after the result: the result is used at once.
    let started = std::time::Instant::now();
    let brokered = broker_says(
        200,
        "application/json",
        &[
            PROCESSING,
            "{\"client_token\":\"abc\",\"client_secret\":\"def\"}\n",
        ],
        true,
    )
    .await
    .unwrap();
    assert_eq!(brokered.credentials.key, "abc");
    assert!(started.elapsed() < std::time::Duration::from_secs(4));

    let timed_out = |result: Result<_, Error>| {
        let err = result.unwrap_err();
        assert!(
            matches!(&err, Error::Broker { code, .. } if code == "ba.timed_out"),
            "{err}"
        );
        err.to_string()
    };
    // One pretty-printed JSON object.
    timed_out(
        broker_says(
            200,
            "application/json",
            &["{\n  \"status\": \"error\",\n  \"type\": \"ba.timed_out\",\n  \"message\": \"slow\"\n}"],
            false,
        )
        .await,
    );
    // "processing", then the broker goes away.
    timed_out(broker_says(200, "application/x-ndjson", &[PROCESSING], false).await);
    // "processing", then nothing for longer than the client waits.
    let message = timed_out(broker_says(200, "application/x-ndjson", &[PROCESSING], true).await);
    assert!(message.contains("did not finish within 5 s"), "{message}");
    // A proxy's error page; not a broker at all.
    let err = broker_says(502, "text/html", &["<html>Bad Gateway</html>"], false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("HTTP 502"), "{err}");
    let err = broker_says(404, "text/plain", &["Not Found"], false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("check the broker URL"), "{err}");
}

#[tokio::test]
async fn request_tokens_are_retried_while_brokered_credentials_activate() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // A site that, like one behind the reference broker, does not know the consumer for its first answers.
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let site_url = serve_http(axum::Router::new().route(
        "/oauth1/request",
        axum::routing::post(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    (axum::http::StatusCode::UNAUTHORIZED, "Consumer ID is invalid").into_response_()
                } else {
                    "oauth_token=RequestToken&oauth_token_secret=Secret&oauth_callback_confirmed=true".into_response_()
                }
            }
        }),
    ))
    .await;
    let index = serde_json::json!({"namespaces": [], "authentication": {"oauth1": {
        "request": format!("{site_url}/oauth1/request"),
        "authorize": format!("{site_url}/oauth1/authorize"),
        "access": format!("{site_url}/oauth1/access"),
    }}});
    let site =
        authbroker_client::Site::from_index(&format!("{site_url}/wp-json/"), index, &site_url)
            .unwrap();
    let client = Client::new().unwrap();
    let token = client
        .request_token(&site, &Credentials::new("key", "secret"), "oob")
        .await
        .unwrap();
    assert_eq!(token.credentials.key, "RequestToken");
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // A consumer the site never learns about: refused after the grace period, with the site's words.
    let never = serve_http(axum::Router::new().route(
        "/oauth1/request",
        axum::routing::post(|| async {
            (
                axum::http::StatusCode::UNAUTHORIZED,
                "Consumer ID is invalid",
            )
        }),
    ))
    .await;
    let index = serde_json::json!({"namespaces": [], "authentication": {"oauth1": {
        "request": format!("{never}/oauth1/request"),
        "authorize": format!("{never}/oauth1/authorize"),
        "access": format!("{never}/oauth1/access"),
    }}});
    let site =
        authbroker_client::Site::from_index(&format!("{never}/wp-json/"), index, &never).unwrap();
    let err = client
        .request_token(&site, &Credentials::new("key", "secret"), "oob")
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::OAuth { status: 401, .. }), "{err}");
    assert!(err.to_string().contains("Consumer ID is invalid"), "{err}");
}

#[tokio::test]
async fn a_site_without_revocation_says_so() {
    // A WordPress site has no /oauth1/revoke: 404.
    let wordpress = serve_http(axum::Router::new()).await;
    let session = Client::new().unwrap().session(
        authbroker_client::Site::from_parts(&wordpress, &format!("{wordpress}/wp-json/"), "WP"),
        Credentials::new("ck", "cs"),
        Credentials::new("tk", "ts"),
    );
    assert_eq!(session.revoke().await.unwrap(), Revocation::NotSupported);
}
