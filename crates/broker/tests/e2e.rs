//! End to end over real sockets: a client signs R1 at our broker (HTTPS, test CA), the broker discovers our
//! site, sends the connection request, the site verifies over TLS, the client gets the credentials and runs
//! the three-legged flow with the site, then publishes a post.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use authbroker_broker::apps::{NewApp, create_developer, register_app};
use authbroker_broker::{BrokerConfig, BrokerState, SystemClock, router};
use authbroker_oauth1::{SignatureMethod, Signer};
use authbroker_site::{KnownBrokerConfig, Role, SiteConfig, SiteState, create_user};
use authbroker_testkit::{BoundTls, ScriptedUser, TestCa, nonce, now, serve_http, three_legged};
use serde_json::Value;

const CALLBACK: &str = "http://127.0.0.1:9/callback";

struct World {
    ca: TestCa,
    broker_base: String,
    broker: BrokerState,
    site_base: String,
    _dirs: Vec<tempfile::TempDir>,
}

async fn world(connect_timeout_secs: u64) -> World {
    let ca = TestCa::new("authbroker test CA");
    let broker_dir = tempfile::tempdir().unwrap();
    let bound = BoundTls::bind(&ca, "broker").await;
    let broker_base = bound.base();
    let mut config = BrokerConfig::new(format!("{broker_base}/"));
    config.data_dir = broker_dir.path().to_owned();
    config.allow_loopback_targets = true;
    config.connect_timeout_secs = connect_timeout_secs;
    let broker = BrokerState::open(config, Arc::new(SystemClock))
        .await
        .unwrap();
    bound.serve(router(broker.clone()));

    let site_dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site_base = format!("http://{}", listener.local_addr().unwrap());
    let mut site_config = SiteConfig::new(site_base.clone());
    site_config.data_dir = site_dir.path().to_owned();
    site_config.known_brokers = vec![KnownBrokerConfig {
        id: format!("{broker_base}/"),
        verification_url: format!("{broker_base}/broker/confirm/"),
    }];
    site_config.extra_root_certs = vec![ca.pem_path()];
    let site = SiteState::open(site_config, Arc::new(SystemClock))
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
    let app = authbroker_site::router(site);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    World {
        ca,
        broker_base,
        broker,
        site_base,
        _dirs: vec![broker_dir, site_dir],
    }
}

async fn registered_app(world: &World) -> authbroker_broker::apps::App {
    let developer = create_developer(
        &world.broker,
        "dev@app.example",
        "Dev",
        "developer password",
        "developer",
    )
    .await
    .unwrap();
    register_app(
        &world.broker,
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

/// Signs and sends R1; returns the HTTP status, the content type and the body.
async fn r1(
    world: &World,
    client_id: &str,
    secret: &str,
    server_url: &str,
    accept: Option<&str>,
) -> (u16, String, String) {
    let url = format!("{}/broker/connect", world.broker_base);
    let form = vec![("server_url".to_owned(), server_url.to_owned())];
    let header = Signer::new(SignatureMethod::HmacSha1, client_id, secret)
        .sign("POST", &url, &form, &nonce(), now())
        .unwrap();
    let mut request = world
        .ca
        .client()
        .post(&url)
        .header("Authorization", header.to_header_value())
        .form(&form);
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn brokered_connection_then_three_legged_flow_then_a_post() {
    let world = world(10).await;
    let app = registered_app(&world).await;
    let (status, content_type, body) = r1(
        &world,
        &app.client_id,
        &app.client_secret,
        &format!("{}/", world.site_base),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "application/json");
    let reply: Value = serde_json::from_str(&body).unwrap();
    let key = reply["client_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no credentials: {reply}"))
        .to_owned();
    let secret = reply["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 12);
    assert_eq!(secret.len(), 48);
    assert_eq!(reply["api_root"], format!("{}/wp-json/", world.site_base));
    assert_eq!(
        reply["site_data"]["authentication"]["broker"],
        format!("{}/wp-json/broker/v1/connect", world.site_base)
    );
    assert!(
        world.broker.pending().is_empty(),
        "nothing pending after delivery"
    );

    // The site activated them before they reached the client: the flow works at once.
    let user = ScriptedUser::new("editor", "correct horse battery");
    let access = three_legged(&world.site_base, &key, &secret, CALLBACK, &user).await;
    let url = format!("{}/wp-json/wp/v2/posts", world.site_base);
    let post = serde_json::json!({"title": "Hello from the broker", "content": "<p>It works.</p>", "status": "publish"});
    let header = Signer::new(SignatureMethod::HmacSha1, &key, &secret)
        .token(&access.token, &access.secret)
        .sign("POST", &url, &[], &nonce(), now())
        .unwrap();
    let response = reqwest::Client::new()
        .post(&url)
        .header("Authorization", header.to_header_value())
        .json(&post)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["title"]["rendered"], "Hello from the broker");
}

#[tokio::test]
async fn ndjson_framing_when_asked() {
    let world = world(10).await;
    let app = registered_app(&world).await;
    let (status, content_type, body) = r1(
        &world,
        &app.client_id,
        &app.client_secret,
        &world.site_base,
        Some("application/x-ndjson"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/x-ndjson");
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{body}");
    assert_eq!(lines[0], serde_json::json!({"status": "processing"}));
    assert_eq!(lines[1]["client_token"].as_str().unwrap().len(), 12);
}

#[tokio::test]
async fn the_sites_refusal_is_relayed() {
    // The site does not trust this broker: it answers R4 with ba.unknown_broker, which reaches the client.
    let world = world(10).await;
    let app = registered_app(&world).await;
    let other_site = {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut config = SiteConfig::new(base.clone());
        config.data_dir = dir.path().to_owned();
        let site = SiteState::open(config, Arc::new(SystemClock))
            .await
            .unwrap();
        let app = authbroker_site::router(site);
        tokio::spawn(async move {
            let _dir = dir;
            axum::serve(listener, app).await.unwrap()
        });
        base
    };
    let (status, _, body) = r1(
        &world,
        &app.client_id,
        &app.client_secret,
        &other_site,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["status"], "error");
    assert_eq!(reply["code"], "broker.connect.failure");
    assert_eq!(reply["type"], "broker.connect.failure");
    assert_eq!(reply["data"]["site_error"]["code"], "ba.unknown_broker");
}

#[tokio::test]
async fn headers_arrive_before_the_connection_finishes() {
    // A "site" whose connection endpoint accepts but never verifies: R1 answers 200 at once and the body
    // ends with ba.timed_out when the broker's timeout passes.
    let world = world(2).await;
    let app = registered_app(&world).await;
    let silent = serve_http(axum::Router::new().route(
        "/",
        axum::routing::any(|| async { (axum::http::StatusCode::ACCEPTED, "") }),
    ))
    .await;
    let index_site = serve_http(axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let silent = silent.clone();
            async move {
                axum::Json(serde_json::json!({"authentication": {"broker": format!("{silent}/")}}))
            }
        }),
    ))
    .await;
    let url = format!("{}/broker/connect", world.broker_base);
    let form = vec![("server_url".to_owned(), format!("{index_site}/"))];
    let header = Signer::new(
        SignatureMethod::HmacSha1,
        &app.client_id,
        &app.client_secret,
    )
    .sign("POST", &url, &form, &nonce(), now())
    .unwrap();
    let started = std::time::Instant::now();
    let response = world
        .ca
        .client()
        .post(&url)
        .header("Authorization", header.to_header_value())
        .form(&form)
        .send()
        .await
        .unwrap();
    let headers_after = started.elapsed();
    assert_eq!(response.status(), 200);
    assert!(
        headers_after < Duration::from_millis(1500),
        "headers took {headers_after:?}"
    );
    let reply: Value = response.json().await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(reply["code"], "ba.timed_out");
    assert_eq!(reply["type"], "ba.timed_out");
    assert!(world.broker.pending().is_empty());
}

#[tokio::test]
async fn expired_nonces_are_pruned_and_fresh_ones_kept() {
    let clock = Arc::new(authbroker_broker::FixedClock::new(1_700_000_000));
    let dir = tempfile::tempdir().unwrap();
    let mut config = BrokerConfig::new("https://broker.example/");
    config.data_dir = dir.path().to_owned();
    let broker = BrokerState::open(config, clock.clone()).await.unwrap();
    let pool = broker.store().pool();
    for (nonce, expires_at) in [("old", 1_699_999_000_i64), ("fresh", 1_700_000_900)] {
        authbroker_store::sqlx::query(
            "INSERT INTO oauth1_nonces (consumer_key, token, ts, nonce, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind("ck")
        .bind("")
        .bind(expires_at - 900)
        .bind(nonce)
        .bind(expires_at)
        .execute(pool)
        .await
        .unwrap();
    }
    assert_eq!(broker.prune_expired().await.unwrap(), 1);
    let left: Vec<String> = authbroker_store::sqlx::query_scalar("SELECT nonce FROM oauth1_nonces")
        .fetch_all(pool)
        .await
        .unwrap();
    assert_eq!(left, ["fresh"]);
}
