//! The brokered connection endpoint (PROTOCOL.md R4/R5, site side) against fake brokers served over real
//! TLS on loopback, with certificates from a test CA the site trusts through `extra_root_certs`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authbroker_oauth1::{SignatureMethod, Signer};
use authbroker_site::{Consumer, KnownBrokerConfig, SiteConfig, SiteError, SiteState, SystemClock};
use authbroker_store::sqlx::{self, Row};
use authbroker_testkit::{BoundTls, TestCa, try_request_token};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use common::*;
use serde_json::Value;

const BROKER_A: &str = "https://broker-a.example/";
const BROKER_B: &str = "https://broker-b.example/";
const BROKER_UNTRUSTED: &str = "https://broker-untrusted.example/";
const CALLBACK: &str = "http://127.0.0.1:9/callback";

// ---------------------------------------------------------------------------------------------------------
// Fake brokers over TLS with certificates from a test CA.

/// How a fake broker answers verification requests.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Status(u16),
    /// 200, after this long.
    Slowly(Duration),
}

/// What a fake broker received: the form fields and the Content-Type.
#[derive(Debug, Clone)]
struct Received {
    fields: HashMap<String, String>,
    content_type: String,
}

impl Received {
    fn get(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.fields.keys()))
    }
}

#[derive(Clone)]
struct FakeBroker {
    verification_url: String,
    received: Arc<Mutex<Vec<Received>>>,
    answer: Arc<Mutex<Answer>>,
}

impl FakeBroker {
    async fn start(ca: &TestCa) -> Self {
        let bound = BoundTls::bind(ca, "fake broker").await;
        let broker = Self {
            verification_url: format!("{}/broker/confirm/", bound.base()),
            received: Arc::default(),
            answer: Arc::new(Mutex::new(Answer::Status(200))),
        };
        let app = axum::Router::new()
            .route("/broker/confirm/", axum::routing::post(confirm))
            .with_state(broker.clone());
        bound.serve(app);
        broker
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (≤ 5 s) until the broker has received `n` verification requests.
    async fn wait_for_requests(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "the broker received {} verification requests, expected {n}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn confirm(
    State(broker): State<FakeBroker>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let fields: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    broker.received.lock().unwrap().push(Received {
        fields,
        content_type,
    });
    let answer = *broker.answer.lock().unwrap();
    match answer {
        Answer::Status(status) => (
            StatusCode::from_u16(status).unwrap(),
            axum::Json(serde_json::json!({"status": status})),
        )
            .into_response(),
        Answer::Slowly(delay) => {
            tokio::time::sleep(delay).await;
            StatusCode::OK.into_response()
        }
    }
}

/// A site that knows brokers A and B (certificates from the trusted test CA) and a third broker whose
/// certificate comes from a CA the site does not trust.
struct Env {
    site: TestSite,
    a: FakeBroker,
    b: FakeBroker,
    untrusted: FakeBroker,
    /// Held for their certificate files.
    _cas: (TestCa, TestCa),
}

impl Env {
    async fn start(backend: Backend) -> Self {
        let ca = TestCa::new("authbroker test CA");
        let other_ca = TestCa::new("a CA nobody trusts");
        let ca_file = ca.pem_path();
        let a = FakeBroker::start(&ca).await;
        let b = FakeBroker::start(&ca).await;
        let untrusted = FakeBroker::start(&other_ca).await;
        let known = [
            (BROKER_A, &a),
            (BROKER_B, &b),
            (BROKER_UNTRUSTED, &untrusted),
        ]
        .map(|(id, broker)| KnownBrokerConfig {
            id: id.to_owned(),
            verification_url: broker.verification_url.clone(),
        })
        .to_vec();
        let site = TestSite::start_with(backend, Arc::new(SystemClock), move |config| {
            config.known_brokers = known;
            config.extra_root_certs = vec![ca_file];
        })
        .await;
        Self {
            site,
            a,
            b,
            untrusted,
            _cas: (ca, other_ca),
        }
    }

    fn endpoint(&self) -> String {
        self.site.url("/wp-json/broker/v1/connect")
    }

    /// Sends a connection request (form-encoded); returns the status and the JSON body.
    async fn connect(&self, fields: &[(&str, &str)]) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(self.endpoint())
            .form(fields)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// The consumer for (broker, client_id), whatever its status.
    async fn consumer(&self, broker: &str, client_id: &str) -> Option<Consumer> {
        let row = sqlx::query(
            "SELECT id, consumer_key, consumer_secret, name, description, callback, broker_id, broker_client_id, details_url, status FROM consumers WHERE broker_id = $1 AND broker_client_id = $2",
        )
        .bind(broker)
        .bind(client_id)
        .fetch_optional(self.site.state.store().pool())
        .await
        .unwrap()?;
        Some(Consumer {
            id: row.try_get("id").unwrap(),
            key: row.try_get("consumer_key").unwrap(),
            secret: row.try_get("consumer_secret").unwrap(),
            name: row.try_get("name").unwrap(),
            description: row.try_get("description").unwrap(),
            callback: row.try_get("callback").unwrap(),
            broker_id: row.try_get("broker_id").unwrap(),
            broker_client_id: row.try_get("broker_client_id").unwrap(),
            details_url: row.try_get("details_url").unwrap(),
            status: row.try_get("status").unwrap(),
        })
    }

    async fn consumer_count(&self) -> i64 {
        sqlx::query("SELECT COUNT(*) AS n FROM consumers")
            .fetch_one(self.site.state.store().pool())
            .await
            .unwrap()
            .try_get("n")
            .unwrap()
    }

    /// Polls (≤ `limit`, 50 ms steps) until the consumer for (broker, client_id) has `status` (`None`: no
    /// consumer at all). Fails if it ever shows up active when that is not what is awaited.
    async fn wait_for_status(
        &self,
        broker: &str,
        client_id: &str,
        status: Option<&str>,
        limit: Duration,
    ) -> Option<Consumer> {
        let deadline = Instant::now() + limit;
        loop {
            let consumer = self.consumer(broker, client_id).await;
            let current = consumer.as_ref().map(|c| c.status.as_str());
            if current == status {
                return consumer;
            }
            assert!(
                status == Some("active") || current != Some("active"),
                "{client_id} at {broker} became active"
            );
            assert!(
                Instant::now() < deadline,
                "{client_id} at {broker}: status {current:?}, expected {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Connects `client_id` through `broker` with a complete request (asserting the 202) and waits until its
    /// consumer is active; returns it.
    async fn connect_active(&self, broker: &str, client_id: &str) -> Consumer {
        let (status, body) = self.connect(&request(broker, client_id, &verifier())).await;
        assert_eq!(status, 202, "{broker} {client_id}: {body}");
        self.wait_until_active(broker, client_id).await
    }

    /// Waits (≤ 5 s) until the consumer for (broker, client_id) is active; returns it.
    async fn wait_until_active(&self, broker: &str, client_id: &str) -> Consumer {
        self.wait_for_status(broker, client_id, Some("active"), Duration::from_secs(5))
            .await
            .unwrap()
    }

    async fn cleanup(self) {
        self.site.cleanup().await;
    }
}

/// A complete, valid connection request.
fn request<'a>(broker: &'a str, client_id: &'a str, verifier: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", client_id),
        ("broker", broker),
        ("verifier", verifier),
        ("callback_url", CALLBACK),
        ("client_name", "Brokered App"),
        ("client_description", "An app vouched for by a broker"),
        (
            "client_details",
            "https://broker-a.example/apps/brokered-app",
        ),
    ]
}

fn verifier() -> String {
    nonce()
}

/// A signed temporary-credentials request; returns the status and the JSON error code (if any).
async fn oauth_request(site: &TestSite, key: &str, secret: &str, callback: &str) -> (u16, String) {
    let signer = Signer::new(SignatureMethod::HmacSha1, key, secret).callback(callback);
    try_request_token(&site.base, &signer).await
}

/// Asserts that credentials sent to a broker do not work for OAuth.
async fn assert_unusable(site: &TestSite, received: &Received) {
    let (status, code) = oauth_request(
        site,
        received.get("client_token"),
        received.get("client_secret"),
        CALLBACK,
    )
    .await;
    assert_eq!(status, 401, "{code}");
    assert_eq!(code, "json_consumer_notfound");
}

// ---------------------------------------------------------------------------------------------------------
// Tests.

#[tokio::test]
async fn get_and_head_announce_the_endpoint() {
    let env = Env::start(Backend::Sqlite).await;
    let client = reqwest::Client::new();
    for url in [
        env.endpoint(),
        env.site.url("/wp-json/broker/v1/connect/"),
        env.site.url("/index.php?rest_route=/broker/v1/connect"),
    ] {
        let get = client.get(&url).send().await.unwrap();
        assert_eq!(get.status(), 200, "{url}");
        assert_eq!(
            get.headers()["x-ba-endpoint"],
            "connection-request",
            "{url}"
        );
        let head = client.head(&url).send().await.unwrap();
        assert_eq!(head.status(), 200, "{url}");
        assert_eq!(
            head.headers()["x-ba-endpoint"],
            "connection-request",
            "{url}"
        );
    }
    // The REST index points at this endpoint.
    let index: Value = client
        .get(env.site.url("/wp-json/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(index["authentication"]["broker"], env.endpoint());
    env.cleanup().await;
}

/// A refused connection request: its fields, the expected code and, where it is fixed, the message.
type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, Option<&'a str>);

#[tokio::test]
async fn invalid_requests_are_refused_in_protocol_order() {
    for backend in BACKENDS {
        let env = Env::start(backend).await;
        sqlx::query(
            "INSERT INTO client_rules (broker_id, client_id, rule) VALUES ($1, $2, 'deny')",
        )
        .bind(BROKER_A)
        .bind("denied-app")
        .execute(env.site.state.store().pool())
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO client_rules (broker_id, client_id, rule) VALUES ($1, $2, 'allow')",
        )
        .bind(BROKER_B)
        .bind("allowed-app")
        .execute(env.site.state.store().pool())
        .await
        .unwrap();

        let long_id = "x".repeat(256);
        let long_verifier = "v".repeat(256);
        let v = verifier();
        let cases: Vec<Case> = vec![
            (
                vec![],
                "rest_missing_callback_param",
                Some("Missing parameter(s): client_id, broker, verifier, callback_url"),
            ),
            (
                vec![("client_id", "app"), ("verifier", &v)],
                "rest_missing_callback_param",
                Some("Missing parameter(s): broker, callback_url"),
            ),
            // Missing parameters win over everything else being wrong.
            (
                vec![("client_id", ""), ("broker", "nope"), ("verifier", "-")],
                "rest_missing_callback_param",
                Some("Missing parameter(s): callback_url"),
            ),
            (
                vec![
                    ("client_id", ""),
                    ("broker", "nope"),
                    ("verifier", "-"),
                    ("callback_url", "oob"),
                ],
                "ba.invalid_client_id",
                None,
            ),
            (
                vec![
                    ("client_id", &long_id),
                    ("broker", BROKER_A),
                    ("verifier", &v),
                    ("callback_url", CALLBACK),
                ],
                "ba.invalid_client_id",
                None,
            ),
            (
                vec![
                    ("client_id", "app"),
                    ("broker", "nope"),
                    ("verifier", ""),
                    ("callback_url", "oob"),
                ],
                "ba.invalid_verifier",
                None,
            ),
            (
                vec![
                    ("client_id", "app"),
                    ("broker", BROKER_A),
                    ("verifier", "not-alphanumeric"),
                    ("callback_url", CALLBACK),
                ],
                "ba.invalid_verifier",
                None,
            ),
            (
                vec![
                    ("client_id", "app"),
                    ("broker", BROKER_A),
                    ("verifier", &long_verifier),
                    ("callback_url", CALLBACK),
                ],
                "ba.invalid_verifier",
                None,
            ),
            (
                vec![
                    ("client_id", "app"),
                    ("broker", "nope"),
                    ("verifier", &v),
                    ("callback_url", "oob"),
                ],
                "ba.invalid_callback",
                None,
            ),
            (
                vec![
                    ("client_id", "app"),
                    ("broker", BROKER_A),
                    ("verifier", &v),
                    ("callback_url", "/relative/callback"),
                ],
                "ba.invalid_callback",
                None,
            ),
            (
                vec![
                    ("client_id", "app"),
                    ("broker", BROKER_A),
                    ("verifier", &v),
                    ("callback_url", "myapp:no-host"),
                ],
                "ba.invalid_callback",
                None,
            ),
            (
                vec![
                    ("client_id", "app"),
                    ("broker", "https://unknown.example/"),
                    ("verifier", &v),
                    ("callback_url", CALLBACK),
                ],
                "ba.unknown_broker",
                None,
            ),
            // NUL characters (PostgreSQL text cannot hold them) are refused, never a 500.
            (
                vec![
                    ("client_id", "a\0pp"),
                    ("broker", BROKER_A),
                    ("verifier", &v),
                    ("callback_url", CALLBACK),
                ],
                "ba.invalid_client_id",
                None,
            ),
            (
                vec![
                    ("client_id", "app"),
                    ("broker", "https://broker-a.example/\0"),
                    ("verifier", &v),
                    ("callback_url", CALLBACK),
                ],
                "ba.unknown_broker",
                None,
            ),
            // URL parsers strip a trailing NUL, so this callback would parse; it is refused.
            (
                vec![
                    ("client_id", "app"),
                    ("broker", BROKER_A),
                    ("verifier", &v),
                    ("callback_url", "http://127.0.0.1:9/callback\0"),
                ],
                "ba.invalid_callback",
                None,
            ),
            // Broker IDs are compared as exact strings.
            (
                vec![
                    ("client_id", "app"),
                    ("broker", "https://broker-a.example"),
                    ("verifier", &v),
                    ("callback_url", CALLBACK),
                ],
                "ba.unknown_broker",
                None,
            ),
            (
                vec![
                    ("client_id", "denied-app"),
                    ("broker", BROKER_A),
                    ("verifier", &v),
                    ("callback_url", CALLBACK),
                ],
                "ba.rejected_client",
                None,
            ),
            // Broker B has an allow-list: only allowed-app may connect through it.
            (
                vec![
                    ("client_id", "other-app"),
                    ("broker", BROKER_B),
                    ("verifier", &v),
                    ("callback_url", CALLBACK),
                ],
                "ba.rejected_client",
                None,
            ),
        ];
        for (fields, code, message) in &cases {
            let (status, body) = env.connect(fields).await;
            assert_eq!(status, 400, "{backend:?} {fields:?}: {body}");
            assert_eq!(body["code"], *code, "{backend:?} {fields:?}: {body}");
            assert_eq!(body["data"]["status"], 400, "{body}");
            assert!(body["message"].is_string(), "{body}");
            if let Some(message) = message {
                assert_eq!(body["message"], *message, "{body}");
            }
        }

        // Rules are per (broker, client_id): the app denied at broker A is on broker B's allow-list.
        sqlx::query(
            "INSERT INTO client_rules (broker_id, client_id, rule) VALUES ($1, $2, 'allow')",
        )
        .bind(BROKER_B)
        .bind("denied-app")
        .execute(env.site.state.store().pool())
        .await
        .unwrap();
        for (broker, client_id) in [
            (BROKER_B, "allowed-app"),
            (BROKER_B, "denied-app"),
            // Broker A has deny rules but no allow-list: other apps pass.
            (BROKER_A, "some-app"),
        ] {
            env.connect_active(broker, client_id).await;
        }
        // Nothing was sent for any refused request.
        assert_eq!(env.a.received().len(), 1);
        assert_eq!(env.b.received().len(), 2);
        assert_eq!(env.consumer_count().await, 3);
        env.cleanup().await;
    }
}

#[tokio::test]
async fn a_verified_connection_activates_credentials_that_complete_oauth() {
    for backend in BACKENDS {
        let env = Env::start(backend).await;
        let v = verifier();
        let started = Instant::now();
        let (status, body) = env.connect(&request(BROKER_A, "brokered-app", &v)).await;
        assert_eq!(status, 202, "{backend:?}: {body}");
        assert_eq!(body["status"], "pending");
        assert!(started.elapsed() < Duration::from_secs(2));

        let received = env.a.wait_for_requests(1).await;
        let sent = &received[0];
        assert!(
            sent.content_type
                .starts_with("application/x-www-form-urlencoded"),
            "{}",
            sent.content_type
        );
        assert_eq!(sent.get("verifier"), v);
        assert_eq!(sent.get("client_id"), "brokered-app");
        let key = sent.get("client_token");
        let secret = sent.get("client_secret");
        assert_eq!(key.len(), 12);
        assert_eq!(secret.len(), 48);
        assert!(
            key.chars()
                .chain(secret.chars())
                .all(|c| c.is_ascii_alphanumeric())
        );
        assert_eq!(sent.fields.len(), 4, "{:?}", sent.fields.keys());

        let consumer = env.wait_until_active(BROKER_A, "brokered-app").await;
        assert_eq!(consumer.key, key);
        assert_eq!(consumer.secret, secret);
        assert_eq!(consumer.name, "Brokered App");
        assert_eq!(consumer.description, "An app vouched for by a broker");
        assert_eq!(consumer.callback, CALLBACK);
        assert_eq!(consumer.broker_id.as_deref(), Some(BROKER_A));
        assert_eq!(consumer.broker_client_id.as_deref(), Some("brokered-app"));
        assert_eq!(
            consumer.details_url.as_deref(),
            Some("https://broker-a.example/apps/brokered-app")
        );

        // The credentials the broker received work for the whole three-legged flow.
        let from_broker = Consumer {
            key: key.to_owned(),
            secret: secret.to_owned(),
            ..consumer
        };
        let access = env
            .site
            .three_legged(&from_broker, SignatureMethod::HmacSha1)
            .await;
        assert_eq!(access.token.len(), 24);
        assert_eq!(access.secret.len(), 48);
        env.cleanup().await;
    }
}

/// NUL characters (which PostgreSQL text cannot hold) in what the broker says about the app: dropped from
/// the name and description, and a details URL holding one is not kept; the app connects on both backends.
#[tokio::test]
async fn nul_in_the_apps_description_is_dropped() {
    for backend in BACKENDS {
        let env = Env::start(backend).await;
        let response = reqwest::Client::new()
            .post(env.endpoint())
            .json(&serde_json::json!({
                "client_id": "nul-app",
                "broker": BROKER_A,
                "verifier": verifier(),
                "callback_url": CALLBACK,
                "client_name": "Nul\u{0} App",
                "client_description": "Desc\u{0}ribed",
                "client_details": "https://broker-a.example/apps/nul-app\u{0}",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "{backend:?}");
        let consumer = env.wait_until_active(BROKER_A, "nul-app").await;
        assert_eq!(consumer.name, "Nul App", "{backend:?}");
        assert_eq!(consumer.description, "Described");
        assert_eq!(consumer.details_url, None);
        env.cleanup().await;
    }
}

#[tokio::test]
async fn json_bodies_and_the_rest_route_form_are_accepted() {
    for backend in BACKENDS {
        let env = Env::start(backend).await;
        let v = verifier();
        let response = reqwest::Client::new()
            .post(env.site.url("/index.php?rest_route=/broker/v1/connect"))
            .json(&serde_json::json!({
                "client_id": "json-app",
                "broker": BROKER_B,
                "verifier": v,
                "callback_url": CALLBACK,
                "client_name": "JSON App",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "{backend:?}");
        let received = env.b.wait_for_requests(1).await;
        assert_eq!(received[0].get("verifier"), v);
        assert_eq!(received[0].get("client_id"), "json-app");
        let consumer = env.wait_until_active(BROKER_B, "json-app").await;
        assert_eq!(consumer.name, "JSON App");
        assert_eq!(consumer.details_url, None);
        env.cleanup().await;
    }
}

#[tokio::test]
async fn a_broker_refusing_verification_discards_the_credentials() {
    for backend in BACKENDS {
        let env = Env::start(backend).await;
        for (n, status) in [400u16, 500, 302, 201].into_iter().enumerate() {
            env.a.answer(Answer::Status(status));
            let client_id = format!("refused-{status}");
            let (code, body) = env
                .connect(&request(BROKER_A, &client_id, &verifier()))
                .await;
            assert_eq!(code, 202, "{body}");
            let received = env.a.wait_for_requests(n + 1).await;
            let sent = &received[n];
            assert_eq!(sent.get("client_id"), client_id);
            env.wait_for_status(BROKER_A, &client_id, None, Duration::from_secs(5))
                .await;
            assert_unusable(&env.site, sent).await;
        }
        assert_eq!(env.consumer_count().await, 0);
        env.cleanup().await;
    }
}

#[tokio::test]
async fn a_slow_broker_times_out_and_the_credentials_are_discarded() {
    async fn run(backend: Backend) {
        let env = Env::start(backend).await;
        env.a.answer(Answer::Slowly(Duration::from_secs(8)));
        let started = Instant::now();
        let (status, body) = env
            .connect(&request(BROKER_A, "slow-app", &verifier()))
            .await;
        assert_eq!(status, 202, "{body}");
        // The 202 does not wait for the broker.
        assert!(started.elapsed() < Duration::from_secs(2));
        let received = env.a.wait_for_requests(1).await;
        // While the broker thinks, the credentials exist but are pending and unusable.
        let pending = env.consumer(BROKER_A, "slow-app").await.unwrap();
        assert_eq!(pending.status, "pending");
        assert_unusable(&env.site, &received[0]).await;
        // The site gives up after 5 s.
        env.wait_for_status(BROKER_A, "slow-app", None, Duration::from_millis(6500))
            .await;
        assert!(started.elapsed() >= Duration::from_millis(4900));
        assert_unusable(&env.site, &received[0]).await;
        env.cleanup().await;
    }
    // Both backends at once keep the wait near the timeout.
    tokio::join!(run(Backend::Sqlite), run(Backend::Postgres));
}

#[tokio::test]
async fn a_broker_with_an_untrusted_certificate_is_never_sent_anything() {
    for backend in BACKENDS {
        let env = Env::start(backend).await;
        let (status, body) = env
            .connect(&request(BROKER_UNTRUSTED, "tls-app", &verifier()))
            .await;
        assert_eq!(status, 202, "{body}");
        // The TLS handshake fails at once: watch for a second that nothing becomes active, then check
        // that the pending credentials are gone and the broker never got a request through.
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            if let Some(consumer) = env.consumer(BROKER_UNTRUSTED, "tls-app").await {
                assert_eq!(consumer.status, "pending");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        env.wait_for_status(BROKER_UNTRUSTED, "tls-app", None, Duration::from_secs(5))
            .await;
        assert!(env.untrusted.received().is_empty());
        assert_eq!(env.consumer_count().await, 0);
        env.cleanup().await;
    }
}

#[tokio::test]
async fn a_second_connection_resends_the_same_credentials_and_updates_the_app() {
    for backend in BACKENDS {
        let env = Env::start(backend).await;
        let first = env.connect_active(BROKER_A, "returning-app").await;

        // Again, with a new verifier, name and callback.
        let v = verifier();
        let mut second = request(BROKER_A, "returning-app", &v);
        second.retain(|(name, _)| !matches!(*name, "client_name" | "callback_url"));
        second.push(("client_name", "Returning App v2"));
        second.push(("callback_url", "http://127.0.0.1:9/callback2"));
        let (status, _) = env.connect(&second).await;
        assert_eq!(status, 202);
        let received = env.a.wait_for_requests(2).await;
        assert_eq!(received[1].get("verifier"), v);
        assert_eq!(received[1].get("client_token"), first.key);
        assert_eq!(received[1].get("client_secret"), first.secret);
        let deadline = Instant::now() + Duration::from_secs(5);
        let updated = loop {
            let consumer = env.consumer(BROKER_A, "returning-app").await.unwrap();
            if consumer.name == "Returning App v2" {
                break consumer;
            }
            assert!(Instant::now() < deadline, "the name was not updated");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(updated.id, first.id);
        assert_eq!(updated.status, "active");
        assert_eq!(updated.callback, "http://127.0.0.1:9/callback2");
        assert_eq!(env.consumer_count().await, 1);

        // A third request the broker does not confirm changes nothing: the consumer stays active, with
        // its name, callback and credentials.
        env.a.answer(Answer::Status(400));
        let v3 = verifier();
        let mut third = request(BROKER_A, "returning-app", &v3);
        third.retain(|(name, _)| !matches!(*name, "client_name" | "callback_url"));
        third.push(("client_name", "Hijacked"));
        third.push(("callback_url", "https://attacker.example/cb"));
        let (status, _) = env.connect(&third).await;
        assert_eq!(status, 202);
        let received = env.a.wait_for_requests(3).await;
        assert_eq!(received[2].get("client_token"), first.key);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = env.consumer(BROKER_A, "returning-app").await.unwrap();
        assert_eq!(after, updated);
        let (status, code) = oauth_request(
            &env.site,
            &first.key,
            &first.secret,
            "http://127.0.0.1:9/callback2",
        )
        .await;
        assert_eq!(status, 200, "{code}");
        env.cleanup().await;
    }
}

#[tokio::test]
async fn the_same_client_id_at_another_broker_is_another_consumer() {
    for backend in BACKENDS {
        let env = Env::start(backend).await;
        let at_a = env.connect_active(BROKER_A, "shared-id").await;

        let at_b = env.connect_active(BROKER_B, "shared-id").await;
        let received = env.b.wait_for_requests(1).await;
        // Broker B never sees broker A's credentials for the app.
        assert_ne!(received[0].get("client_token"), at_a.key);
        assert_ne!(received[0].get("client_secret"), at_a.secret);
        assert_eq!(received[0].get("client_token"), at_b.key);
        assert_ne!(at_a.id, at_b.id);
        assert_eq!(env.a.received().len(), 1);
        assert_eq!(env.consumer_count().await, 2);
        env.cleanup().await;
    }
}

#[tokio::test]
async fn concurrent_requests_for_a_new_app_make_one_consumer() {
    for backend in BACKENDS {
        let env = Env::start(backend).await;
        let (v1, v2) = (verifier(), verifier());
        let first = request(BROKER_A, "racing-app", &v1);
        let second = request(BROKER_A, "racing-app", &v2);
        let ((s1, b1), (s2, b2)) = tokio::join!(env.connect(&first), env.connect(&second));
        assert_eq!(s1, 202, "{b1}");
        assert_eq!(s2, 202, "{b2}");
        let consumer = env.wait_until_active(BROKER_A, "racing-app").await;
        // Both verifiers reach the broker, each with the one consumer's credentials.
        let received = env.a.wait_for_requests(2).await;
        let mut verifiers: Vec<&str> = received.iter().map(|r| r.get("verifier")).collect();
        verifiers.sort_unstable();
        let mut expected = vec![v1.as_str(), v2.as_str()];
        expected.sort_unstable();
        assert_eq!(verifiers, expected);
        for sent in &received {
            assert_eq!(sent.get("client_token"), consumer.key);
            assert_eq!(sent.get("client_secret"), consumer.secret);
        }
        assert_eq!(env.consumer_count().await, 1);
        env.cleanup().await;
    }
}

#[tokio::test]
async fn known_brokers_are_seeded_from_the_configuration_only_once() {
    async fn brokers(state: &SiteState) -> Vec<(String, String)> {
        sqlx::query("SELECT broker_id, verification_url FROM known_brokers ORDER BY broker_id")
            .fetch_all(state.store().pool())
            .await
            .unwrap()
            .iter()
            .map(|row| {
                (
                    row.try_get("broker_id").unwrap(),
                    row.try_get("verification_url").unwrap(),
                )
            })
            .collect()
    }
    let known = |id: &str| KnownBrokerConfig {
        id: id.to_owned(),
        verification_url: format!("{id}broker/confirm/"),
    };
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let mut config = SiteConfig::new("http://127.0.0.1:1");
        config.data_dir = dir.path().to_path_buf();
        let database = TestDatabase::create(backend).await;
        config.database_url = database.url();
        config.known_brokers = vec![known("https://one.example/"), known("https://two.example/")];
        let first = SiteState::open(config.clone(), Arc::new(SystemClock))
            .await
            .unwrap();
        let seeded = vec![
            (
                "https://one.example/".to_owned(),
                "https://one.example/broker/confirm/".to_owned(),
            ),
            (
                "https://two.example/".to_owned(),
                "https://two.example/broker/confirm/".to_owned(),
            ),
        ];
        assert_eq!(brokers(&first).await, seeded, "{backend:?}");
        first.store().pool().close().await;
        drop(first);

        // Once the table holds brokers, it is managed in the site; the configuration no longer applies.
        config.known_brokers = vec![known("https://three.example/")];
        let second = SiteState::open(config.clone(), Arc::new(SystemClock))
            .await
            .unwrap();
        assert_eq!(brokers(&second).await, seeded, "{backend:?}");
        second.store().pool().close().await;
        drop(second);
        database.drop().await;
    }
}

#[tokio::test]
async fn extra_root_certs_that_hold_no_certificate_stop_the_site_from_opening() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    for path in [dir.path().join("missing.pem"), not_pem] {
        let mut config = SiteConfig::new("http://127.0.0.1:1");
        config.data_dir = dir.path().to_path_buf();
        config.extra_root_certs = vec![path.clone()];
        let err = SiteState::open(config, Arc::new(SystemClock))
            .await
            .unwrap_err();
        let SiteError::Internal(detail) = &err else {
            panic!("{path:?}: {err}");
        };
        assert!(detail.contains("extra_root_certs"), "{detail}");
    }
}
