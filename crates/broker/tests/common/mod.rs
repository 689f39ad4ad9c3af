//! Support for the broker's integration tests over real sockets: our broker over TLS (test CA), our real
//! site or fake sites on loopback, registered apps and signed R1 requests.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use authbroker_broker::apps::{App, NewApp, create_developer, register_app};
use authbroker_broker::{BrokerConfig, BrokerState, SystemClock, router};
use authbroker_oauth1::{SignatureMethod, Signer};
use authbroker_site::{KnownBrokerConfig, SiteConfig, SiteState};
use authbroker_testkit::{BoundTls, TestCa, nonce, now};
use axum::Router;
use axum::http::HeaderMap;

pub(crate) const CALLBACK: &str = "http://127.0.0.1:9/callback";

/// A running broker.
pub(crate) struct Broker {
    /// `https://127.0.0.1:PORT` (or `http://` for [`start_broker_with_peer_addresses`]), no trailing slash.
    pub(crate) base: String,
    pub(crate) state: BrokerState,
    _dir: tempfile::TempDir,
}

impl Broker {
    pub(crate) fn connect_url(&self) -> String {
        format!("{}/broker/connect", self.base)
    }

    pub(crate) fn confirm_url(&self) -> String {
        format!("{}/broker/confirm/", self.base)
    }

    /// The data directory (where the SQLite database lives).
    pub(crate) fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }
}

fn base_config(base: &str, dir: &tempfile::TempDir) -> BrokerConfig {
    let mut config = BrokerConfig::new(format!("{base}/"));
    config.data_dir = dir.path().to_owned();
    config.allow_loopback_targets = true;
    config.connect_timeout_secs = 10;
    config
}

/// Starts our broker over TLS with a certificate from `ca` (served like production, without peer
/// addresses); `configure` adjusts the configuration first.
pub(crate) async fn start_broker(ca: &TestCa, configure: impl FnOnce(&mut BrokerConfig)) -> Broker {
    let dir = tempfile::tempdir().unwrap();
    let bound = BoundTls::bind(ca, "broker").await;
    let base = bound.base();
    let mut config = base_config(&base, &dir);
    configure(&mut config);
    let state = BrokerState::open(config, Arc::new(SystemClock))
        .await
        .unwrap();
    bound.serve(router(state.clone()));
    Broker {
        base,
        state,
        _dir: dir,
    }
}

/// Starts our broker over plain HTTP on loopback, served with the TCP peer address of every request (axum
/// `ConnectInfo`), which the per-IP rate limit reads.
pub(crate) async fn start_broker_with_peer_addresses(
    configure: impl FnOnce(&mut BrokerConfig),
) -> Broker {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = base_config(&base, &dir);
    configure(&mut config);
    let state = BrokerState::open(config, Arc::new(SystemClock))
        .await
        .unwrap();
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Broker {
        base,
        state,
        _dir: dir,
    }
}

static DEVELOPERS: AtomicUsize = AtomicUsize::new(0);

/// Registers a developer and an app at `broker`.
pub(crate) async fn register(broker: &BrokerState, name: &str) -> App {
    register_apps(broker, name, 1).await.remove(0)
}

/// Registers one developer (a password hash: slow in debug builds) and `count` apps of theirs.
pub(crate) async fn register_apps(broker: &BrokerState, name: &str, count: usize) -> Vec<App> {
    let n = DEVELOPERS.fetch_add(1, Ordering::Relaxed);
    let developer = create_developer(
        broker,
        &format!("dev{n}@app.example"),
        "Dev",
        "developer password",
        "developer",
    )
    .await
    .unwrap();
    let mut apps = Vec::with_capacity(count);
    for i in 0..count {
        apps.push(
            register_app(
                broker,
                &developer.id,
                NewApp {
                    name: &format!("{name} {i}"),
                    description: "An app under test",
                    callback_url: CALLBACK,
                    details_url: "https://app.example/about",
                },
            )
            .await
            .unwrap(),
        );
    }
    apps
}

/// The `Authorization` header of an R1 request to `url` with `form` as its body, signed by `app`.
pub(crate) fn sign_r1(
    url: &str,
    client_id: &str,
    secret: &str,
    form: &[(String, String)],
) -> String {
    Signer::new(SignatureMethod::HmacSha1, client_id, secret)
        .sign("POST", url, form, &nonce(), now())
        .unwrap()
        .to_header_value()
}

/// What came back from R1.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Sends a signed R1 for `server_url` with `client`.
pub(crate) async fn r1(
    client: &reqwest::Client,
    broker: &Broker,
    app: &App,
    server_url: &str,
) -> Reply {
    let url = broker.connect_url();
    let form = vec![("server_url".to_owned(), server_url.to_owned())];
    let header = sign_r1(&url, &app.client_id, &app.client_secret, &form);
    send(
        client
            .post(&url)
            .header("Authorization", header)
            .form(&form),
    )
    .await
}

pub(crate) async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

/// Serves a router built from its own base URL (`http://127.0.0.1:PORT`) on loopback.
pub(crate) async fn serve(app: impl FnOnce(String) -> Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = app(base.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// A fake WordPress-like site: `/` links the REST root, `/wp-json/` names `{base}/connect` as its
/// `authentication.broker`, and `connect` serves that endpoint.
pub(crate) fn fake_site(base: &str, connect: axum::routing::MethodRouter) -> Router {
    let link = format!("<{base}/wp-json/>; rel=\"https://api.w.org/\"");
    let index = serde_json::json!({
        "name": "Fake site",
        "url": base,
        "authentication": {"broker": format!("{base}/connect")},
    });
    Router::new()
        .route(
            "/",
            axum::routing::any(move || {
                let link = link.clone();
                async move { ([("link", link)], "<html></html>") }
            }),
        )
        .route(
            "/wp-json/",
            axum::routing::get(move || async move { axum::Json(index) }),
        )
        .route("/connect", connect)
}

/// Our real site on loopback (plain HTTP, like e2e.rs), trusting `broker` and the test CA for R5.
pub(crate) async fn real_site(
    ca: &TestCa,
    broker: &Broker,
) -> (String, SiteState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = SiteConfig::new(base.clone());
    config.data_dir = dir.path().to_owned();
    config.known_brokers = vec![KnownBrokerConfig {
        id: format!("{}/", broker.base),
        verification_url: broker.confirm_url(),
    }];
    config.extra_root_certs = vec![ca.pem_path()];
    let site = SiteState::open(config, Arc::new(SystemClock))
        .await
        .unwrap();
    let app = authbroker_site::router(site.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, site, dir)
}

/// Checks that brokered credentials work at the site: `POST /oauth1/request` signed with them gives a
/// request token (the site may take a moment to activate them; clients retry briefly on 401).
pub(crate) async fn credentials_work(site_base: &str, client_token: &str, client_secret: &str) {
    let url = format!("{site_base}/oauth1/request");
    let mut last = String::new();
    for _ in 0..20 {
        let header = Signer::new(SignatureMethod::HmacSha1, client_token, client_secret)
            .callback(CALLBACK)
            .sign("POST", &url, &[], &nonce(), now())
            .unwrap();
        let response = reqwest::Client::new()
            .post(&url)
            .header("Authorization", header.to_header_value())
            .send()
            .await
            .unwrap();
        let status = response.status();
        last = response.text().await.unwrap();
        if status == 200 {
            assert_eq!(
                authbroker_testkit::form_value(&last, "oauth_callback_confirmed"),
                "true"
            );
            assert_eq!(
                authbroker_testkit::form_value(&last, "oauth_token").len(),
                24
            );
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the brokered credentials do not work at the site: {last}");
}

/// Asserts `value` is an R1 error object with this code: `status:"error"`, `code` and `type` equal.
#[track_caller]
pub(crate) fn assert_error_object(value: &serde_json::Value, code: &str) {
    assert_eq!(value["status"], "error", "{value}");
    assert_eq!(value["code"], code, "{value}");
    assert_eq!(value["type"], code, "{value}");
    assert!(value["message"].is_string(), "{value}");
    assert!(value["data"].is_object(), "{value}");
}

/// The credentials a fake site issues for a verifier: derived from it (SHA-256), so they are unique per
/// connection and can be recomputed.
pub(crate) fn derived_credentials(verifier: &str) -> (String, String) {
    use sha2::{Digest, Sha256};
    let hex = |data: &[u8]| -> String {
        Sha256::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let token = hex(verifier.as_bytes())[..12].to_owned();
    let secret = hex(format!("{verifier}/secret").as_bytes())[..48].to_owned();
    (token, secret)
}

/// What a verifying fake site did.
#[derive(Debug, Default)]
pub(crate) struct Issued {
    /// client_token → (client_id, client_secret), for every verification the broker accepted.
    pub(crate) accepted: std::sync::Mutex<std::collections::HashMap<String, (String, String)>>,
    /// Verification requests the broker did not answer with 200.
    pub(crate) refused: std::sync::Mutex<Vec<String>>,
    /// Connection requests (R4) received.
    pub(crate) requests: AtomicUsize,
}

/// Holds every verification back until `expected` connection requests arrived (so that they are all
/// pending at once).
#[derive(Debug)]
pub(crate) struct Gate {
    pub(crate) expected: usize,
    arrived: AtomicUsize,
    open: tokio::sync::Notify,
}

impl Gate {
    pub(crate) fn new(expected: usize) -> Arc<Self> {
        Arc::new(Self {
            expected,
            arrived: AtomicUsize::new(0),
            open: tokio::sync::Notify::new(),
        })
    }

    async fn arrive_and_wait(&self) {
        let notified = self.open.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.arrived.fetch_add(1, Ordering::SeqCst) + 1 >= self.expected {
            self.open.notify_waiters();
            return;
        }
        notified.await;
    }
}

/// A fake site whose connection endpoint answers 202 and, `delay(n)` later (n counts its requests; after
/// the `gate` opened, if any), POSTs the verification request (R5) to `confirm_url` with credentials from
/// [`derived_credentials`].
pub(crate) async fn verifying_site(
    client: reqwest::Client,
    confirm_url: String,
    delay: fn(usize) -> std::time::Duration,
    gate: Option<Arc<Gate>>,
) -> (String, Arc<Issued>) {
    let issued = Arc::new(Issued::default());
    let record = issued.clone();
    let handler = axum::routing::post(
        move |axum::extract::Form(form): axum::extract::Form<
            std::collections::HashMap<String, String>,
        >| {
            let issued = record.clone();
            let client = client.clone();
            let confirm_url = confirm_url.clone();
            let gate = gate.clone();
            async move {
                let n = issued.requests.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Some(gate) = gate {
                        gate.arrive_and_wait().await;
                    }
                    tokio::time::sleep(delay(n)).await;
                    let verifier = form["verifier"].clone();
                    let client_id = form["client_id"].clone();
                    let (token, secret) = derived_credentials(&verifier);
                    let result = client
                        .post(&confirm_url)
                        .form(&[
                            ("verifier", verifier.as_str()),
                            ("client_id", client_id.as_str()),
                            ("client_token", token.as_str()),
                            ("client_secret", secret.as_str()),
                        ])
                        .send()
                        .await;
                    match result {
                        Ok(response) if response.status() == 200 => {
                            issued
                                .accepted
                                .lock()
                                .unwrap()
                                .insert(token, (client_id, secret));
                        }
                        Ok(response) => {
                            let status = response.status();
                            let body = response.text().await.unwrap_or_default();
                            issued
                                .refused
                                .lock()
                                .unwrap()
                                .push(format!("{status}: {body}"));
                        }
                        Err(err) => issued.refused.lock().unwrap().push(err.to_string()),
                    }
                });
                axum::http::StatusCode::ACCEPTED
            }
        },
    );
    let base = serve(|base| fake_site(&base, handler)).await;
    (base, issued)
}
